"""Stripe's request encoding: form fields with bracketed keys (``line_items[0][price_data][currency]``),
decoded into nested dicts and lists, as the API reads them (the SDK's _api_encode writes them)."""
from __future__ import annotations

import re

_TOKEN = re.compile(r"\[([^\]]*)\]")


def decode(pairs) -> dict:
    out: dict = {}
    for key, value in pairs:
        head = key.split("[", 1)[0]
        path = [head] + _TOKEN.findall(key[len(head):])
        node = out
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if part == "":  # key[]=a&key[]=b
                part = str(len(node))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ValueError(f"Invalid array or hash for {key}")
    return _lists(out)


def _lists(node):
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node
