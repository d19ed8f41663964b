#!/usr/bin/env python3
"""Creates the benchmark chatflow in a fresh Flowise through its REST API and prints its id.

    flowise_flow.py FLOWISE_URL FAKE_OPENAI_BASE_URL

The flow is Flowise's classic "Tool Agent" chatflow: ChatOpenAI (pointed at the fake provider,
streaming off, temperature 0) + the Calculator tool + Buffer Memory (the Tool Agent requires a
memory) -> Tool Agent. Nodes are built the way the Flowise UI builds them (`initNode`), from the
node definitions the server itself serves at /api/v1/nodes/{name}.

It first registers the instance's owner account (a fresh Flowise has none), logs in with the
session cookie and uses it for the admin calls (`x-request-from: internal`, as the UI does).
The prediction endpoint /api/v1/prediction/{id} needs no key while the chatflow has no API key.
Stdlib only.
"""

import http.cookiejar
import json
import sys
import urllib.error
import urllib.request

EMAIL = "bench@example.com"
PASSWORD = "Bench-pass-123!"

# Input types the UI renders as parameters; every other input type is an anchor (a connection).
PARAM_TYPES = {
    "asyncOptions", "asyncMultiOptions", "options", "multiOptions", "array", "datagrid", "string",
    "number", "boolean", "password", "json", "code", "date", "file", "folder", "tabs",
}


class Client:
    def __init__(self, base):
        self.base = base.rstrip("/")
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        req.add_header("x-request-from", "internal")
        try:
            with self.opener.open(req, timeout=60) as res:
                text = res.read().decode()
        except urllib.error.HTTPError as e:
            raise SystemExit(f"{method} {path}: HTTP {e.code}: {e.read().decode()[:500]}")
        return json.loads(text) if text else None


def init_node(definition, node_id, x):
    """What the Flowise UI's `initNode` makes of a node definition."""
    d = json.loads(json.dumps(definition))
    anchors, params = [], []
    for inp in d.get("inputs", []):
        item = dict(inp, id=f"{node_id}-input-{inp['name']}-{inp['type']}")
        (params if inp["type"] in PARAM_TYPES else anchors).append(item)
    if d.get("credential"):
        cred = d["credential"]
        params.insert(0, dict(cred, id=f"{node_id}-input-{cred['name']}-{cred['type']}"))
    outputs = [{
        "id": f"{node_id}-output-{d['name']}-{'|'.join(d['baseClasses'])}",
        "name": d["name"],
        "label": d["type"],
        "description": d.get("description", ""),
        "type": " | ".join(d["baseClasses"]),
    }]
    d.update({
        "id": node_id,
        "inputAnchors": anchors,
        "inputParams": params,
        "outputAnchors": outputs,
        "inputs": {i["name"]: i.get("default", "") for i in d.get("inputs", [])},
        "outputs": {},
        "selected": False,
    })
    return {
        "id": node_id, "type": "customNode", "position": {"x": x, "y": 0},
        "positionAbsolute": {"x": x, "y": 0}, "width": 300, "height": 500,
        "selected": False, "dragging": False, "data": d,
    }


def edge(source, target, input_name):
    src = source["data"]["outputAnchors"][0]["id"]
    anchor = next(a for a in target["data"]["inputAnchors"] if a["name"] == input_name)
    return {
        "source": source["id"], "sourceHandle": src,
        "target": target["id"], "targetHandle": anchor["id"],
        "type": "buttonedge", "id": f"{source['id']}-{src}-{target['id']}-{anchor['id']}",
    }


def main():
    flowise, fake_openai = sys.argv[1], sys.argv[2]
    c = Client(flowise)
    c.call("POST", "/api/v1/account/register",
           {"user": {"name": "bench", "email": EMAIL, "credential": PASSWORD}})
    c.call("POST", "/api/v1/auth/login", {"email": EMAIL, "password": PASSWORD})

    defs = {n: c.call("GET", f"/api/v1/nodes/{n}")
            for n in ("chatOpenAI", "calculator", "bufferMemory", "toolAgent")}
    model = init_node(defs["chatOpenAI"], "chatOpenAI_0", 0)
    calc = init_node(defs["calculator"], "calculator_0", 400)
    memory = init_node(defs["bufferMemory"], "bufferMemory_0", 800)
    agent = init_node(defs["toolAgent"], "toolAgent_0", 1200)

    model["data"]["inputs"].update({
        "modelName": "gpt-4o-mini",
        "temperature": "0",
        "streaming": False,  # Pipecat's non-streamed invoke calls the provider without streaming too
        "basepath": fake_openai,
        "openAIApiKey": "x",  # read before any credential (getCredentialParam); the fake ignores it
    })
    agent["data"]["inputs"].update({
        "tools": ["{{calculator_0.data.instance}}"],
        "memory": "{{bufferMemory_0.data.instance}}",
        "model": "{{chatOpenAI_0.data.instance}}",
        "systemMessage": "You are a helpful assistant. Use the calculator for arithmetic.",
    })
    flow = {
        "nodes": [model, calc, memory, agent],
        "edges": [edge(calc, agent, "tools"), edge(memory, agent, "memory"),
                  edge(model, agent, "model")],
        "viewport": {"x": 0, "y": 0, "zoom": 1},
    }
    created = c.call("POST", "/api/v1/chatflows", {
        "name": "llm-calculator", "deployed": False, "isPublic": False,
        "flowData": json.dumps(flow), "type": "CHATFLOW",
    })
    print(created["id"])


if __name__ == "__main__":
    main()
