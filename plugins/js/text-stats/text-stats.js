// `text-stats` in JavaScript (componentize-js via jco): the same tool as the
// Rust, Python and C versions, answer for answer. See
// plugins/rust/text-stats for the rules.

const SCHEMA =
  '{"type":"object","properties":{"text":{"type":"string"},' +
  '"top":{"type":"integer","minimum":1,"maximum":50}},"required":["text"]}';

// A `result` error case is returned by throwing the variant.
function invalid(message) {
  return { tag: "invalid-input", val: message };
}

export const handler = {
  describe() {
    return {
      name: "text-stats-js",
      version: "0.1.0",
      description:
        "Counts bytes, characters, lines and words of a text and lists its most frequent words.",
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
    const top = value.top ?? 5;
    if (!Number.isInteger(top) || top < 1 || top > 50) {
      throw invalid("`top` must be an integer from 1 to 50");
    }

    const counts = new Map();
    let words = 0;
    for (const match of text.matchAll(/[A-Za-z0-9]+/g)) {
      const word = match[0].toLowerCase();
      words += 1;
      counts.set(word, (counts.get(word) ?? 0) + 1);
    }
    const ranked = [...counts.entries()].sort((a, b) =>
      b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0),
    );
    const newlines = text.split("\n").length - 1;
    const lines = newlines + (text.length > 0 && !text.endsWith("\n") ? 1 : 0);
    return JSON.stringify({
      bytes: new TextEncoder().encode(text).length,
      characters: [...text].length,
      lines,
      words,
      unique_words: counts.size,
      top_words: ranked.slice(0, top).map(([word, count]) => ({ word, count })),
    });
  },
};
