"""`{{name}}`: a Toka tool in Python (componentize-py).
`{"text": "hi"}` → `{"text": "hi", "length": 2}`."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.host import Level, log
from wit_world.imports.types import ToolError_InvalidInput, ToolInfo

SCHEMA = '{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}'


class Handler(exports.Handler):
    def describe(self) -> ToolInfo:
        return ToolInfo(
            name="{{name}}",
            version="0.1.0",
            description="Says how long a text is.",
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
        log(Level.INFO, f"measuring {len(text)} characters")
        return json.dumps({"text": text, "length": len(text)})
