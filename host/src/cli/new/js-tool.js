// `{{name}}`: a Toka tool in JavaScript (componentize-js via jco).
// `{"text": "hi"}` → `{"text": "hi", "length": 2}`.

import { log } from "toka:plugin/host@0.1.0";

const SCHEMA = '{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}';

// A `result` error case is returned by throwing the variant.
function invalid(message) {
  return { tag: "invalid-input", val: message };
}

export const handler = {
  describe() {
    return {
      name: "{{name}}",
      version: "0.1.0",
      description: "Says how long a text is.",
      inputSchema: SCHEMA,
    };
  },

  invoke(input) {
    let value;
    try {
      value = JSON.parse(input);
    } catch (e) {
      throw invalid(`input is not JSON: ${e.message}`);
    }
    const text = value?.text;
    if (typeof text !== "string") {
      throw invalid("`text` (a string) is required");
    }
    log("info", `measuring ${text.length} characters`);
    return JSON.stringify({ text, length: [...text].length });
  },
};
