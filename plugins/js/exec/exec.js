// The JavaScript runtime of `toka-host exec --lang js`: a wasi:cli command
// that evaluates the code given as `-c CODE` inside the sandbox. An uncaught
// exception prints its stack on stderr and exits 1.

import { getArguments } from "wasi:cli/environment@0.2.12";

export const run = {
  run() {
    const args = getArguments();
    if (args.length !== 3 || args[1] !== "-c") {
      console.error("usage: js-exec -c CODE");
      throw new Error("usage");
    }
    try {
      // Indirect eval: global scope, like a script.
      (0, eval)(args[2]);
    } catch (e) {
      console.error(e && e.stack ? `${e}\n${e.stack}` : String(e));
      throw e;
    }
  },
};
