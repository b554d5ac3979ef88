"""`text-stats` in Python (componentize-py): the same tool as the Rust, JavaScript
and C versions, answer for answer. See plugins/rust/text-stats for the rules."""

import json
import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import ToolError_InvalidInput, ToolInfo

SCHEMA = (
    '{"type":"object","properties":{"text":{"type":"string"},'
    '"top":{"type":"integer","minimum":1,"maximum":50}},"required":["text"]}'
)
WORD = re.compile(r"[A-Za-z0-9]+")


class Handler(exports.Handler):
    def describe(self) -> ToolInfo:
        return ToolInfo(
            name="text-stats-py",
            version="0.1.0",
            description="Counts bytes, characters, lines and words of a text and lists its most frequent words.",
            input_schema=SCHEMA,
        )

    def invoke(self, input: str) -> str:
        try:
            value = json.loads(input)
        except ValueError as e:
            raise Err(ToolError_InvalidInput(f"input is not JSON: {e}"))
        text = value.get("text") if isinstance(value, dict) else None
        if not isinstance(text, str):
            raise Err(ToolError_InvalidInput("`text` (a string) is required"))
        top = value.get("top", 5)
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 50:
            raise Err(ToolError_InvalidInput("`top` must be an integer from 1 to 50"))

        counts: dict[str, int] = {}
        words = 0
        for match in WORD.finditer(text):
            word = match.group(0).lower()
            words += 1
            counts[word] = counts.get(word, 0) + 1
        ranked = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))
        lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        return json.dumps(
            {
                "bytes": len(text.encode("utf-8")),
                "characters": len(text),
                "lines": lines,
                "words": words,
                "unique_words": len(counts),
                "top_words": [{"word": w, "count": c} for w, c in ranked[:top]],
            },
            separators=(",", ":"),
        )
