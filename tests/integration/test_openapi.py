#!/usr/bin/python3
"""Integration: docs/openapi.json stays true.

It must list exactly the routes the server has (roostctl routes), with the
right auth, and live responses must validate against its schemas."""
import json
import os
import re
import subprocess
import urllib.error
import urllib.request

from harness import Stack, run_tests, test

stack = Stack(workers=1)
SRC = os.environ.get("ROOST_SRC_DIR", os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("ROOST_BUILD_DIR", os.path.join(SRC, "build"))
SPEC = json.load(open(os.path.join(SRC, "docs", "openapi.json")))


def resolve(schema):
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = SPEC["components"]["schemas"][name]
    return schema


def validate(value, schema, where="$"):
    """A small JSON Schema subset: type, required, properties, enum, items,
    additionalProperties false, nullable, minimum."""
    schema = resolve(schema)
    if "allOf" in schema:
        if value is None and schema.get("nullable"):
            return
        for part in schema["allOf"]:
            validate(value, part, where)
        return
    if value is None:
        assert schema.get("nullable"), f"{where}: null not allowed"
        return
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool,
             "integer": int, "number": (int, float)}
    if t:
        assert isinstance(value, types[t]) and not (t in ("integer", "number") and isinstance(value, bool)), \
            f"{where}: expected {t}, got {value!r}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if "minimum" in schema:
        assert value >= schema["minimum"], f"{where}: {value} < {schema['minimum']}"
    if t == "object":
        for k in schema.get("required", []):
            assert k in value, f"{where}: missing {k}"
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                validate(v, props[k], f"{where}.{k}")
            else:
                assert schema.get("additionalProperties", True) is not False, f"{where}: unexpected {k}"
    if t == "array":
        for i, v in enumerate(value):
            validate(v, schema.get("items", {}), f"{where}[{i}]")


def spec_routes():
    out = set()
    for path, ops in SPEC["paths"].items():
        for method, op in ops.items():
            auth = "none" if op.get("security") == [] else op.get("x-roost-auth", "user")
            out.add((method.upper(), path, auth))
    return out


def server_routes():
    p = subprocess.run([os.path.join(BUILD, "roostctl"), "routes"], capture_output=True, text=True, check=True)
    out = set()
    for line in p.stdout.splitlines():
        method, pattern, auth = line.split()
        out.add((method, re.sub(r"\{(\w+):\w+\}", r"{\1}", pattern), auth))
    return out


@test
def spec_lists_exactly_the_server_routes():
    s, r = spec_routes(), server_routes()
    assert s == r, f"only in openapi.json: {sorted(s - r)}; only in the server: {sorted(r - s)}"


@test
def health_matches_its_schema():
    with urllib.request.urlopen(stack.url("/api/v1/health"), timeout=10) as resp:
        body = json.loads(resp.read())
    schema = SPEC["paths"]["/api/v1/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    validate(body, schema)


@test
def errors_match_the_error_schema():
    for path in ["/api/v1/nope", "/api/v1/%2e%2e/x"]:
        try:
            urllib.request.urlopen(stack.url(path), timeout=10)
            raise AssertionError("expected an error")
        except urllib.error.HTTPError as e:
            validate(json.loads(e.read()), {"$ref": "#/components/schemas/Error"})


def call(method, path, token=None, body=None):
    req = urllib.request.Request(stack.url(path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def response_schema(method, path, status):
    resp = SPEC["paths"][path][method.lower()]["responses"][str(status)]
    if "content" not in resp:
        return None
    return resp["content"]["application/json"]["schema"]


def check(method, path, template, token=None, body=None, want=200):
    status, doc = call(method, path, token, body)
    assert status == want, (method, path, status, doc)
    schema = response_schema(method, template, status)
    if schema is None:
        assert doc is None, (path, doc)
    else:
        validate(doc, schema, f"{method} {path}")
    return doc


@test
def account_responses_match_their_schemas():
    env = stack.env()
    env["ROOST_ADMIN_PASSWORD"] = "openapi admin password"
    subprocess.run([os.path.join(BUILD, "roostctl"), "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([os.path.join(BUILD, "roostctl"), "create-admin", "spec@example.com"], env=env,
                   check=True, capture_output=True)
    login = check("POST", "/api/v1/auth/login", "/api/v1/auth/login",
                  body={"email": "spec@example.com", "password": "openapi admin password"})
    tok = login["token"]
    check("GET", "/api/v1/me", "/api/v1/me", tok)
    check("PATCH", "/api/v1/me", "/api/v1/me", tok, {"display_name": "Spec", "about": None})
    check("GET", "/api/v1/me/sessions", "/api/v1/me/sessions", tok)
    new = check("POST", "/api/v1/me/tokens", "/api/v1/me/tokens", tok, {"name": "ci"}, 201)
    check("GET", "/api/v1/me/tokens", "/api/v1/me/tokens", tok)
    user = check("POST", "/api/v1/admin/users", "/api/v1/admin/users", tok,
                 {"email": "member@example.com", "name": "Member", "password": "member password 1"}, 201)
    uid = user["id"]
    check("GET", "/api/v1/users?limit=1", "/api/v1/users", tok)
    check("GET", f"/api/v1/users/{uid}", "/api/v1/users/{id}", tok)
    check("PATCH", f"/api/v1/admin/users/{uid}", "/api/v1/admin/users/{id}", tok, {"role": "admin"})
    check("POST", f"/api/v1/admin/users/{uid}/reset-password", "/api/v1/admin/users/{id}/reset-password", tok)
    check("GET", "/api/v1/admin/settings", "/api/v1/admin/settings", tok)
    check("PATCH", "/api/v1/admin/settings", "/api/v1/admin/settings", tok, {"app_name": "Spec"})
    room = check("POST", "/api/v1/rooms", "/api/v1/rooms", tok, {"name": "Spec room", "kind": "public"}, 201)
    rid = room["id"]
    msg = check("POST", f"/api/v1/rooms/{rid}/messages", "/api/v1/rooms/{id}/messages", tok,
                {"type": "text", "content": "hello spec", "client_msg_id": "spec-1"}, 201)
    check("POST", f"/api/v1/rooms/{rid}/messages", "/api/v1/rooms/{id}/messages", tok,
          {"type": "text", "content": "hello spec", "client_msg_id": "spec-1"}, 200)
    check("GET", f"/api/v1/rooms/{rid}/messages?limit=5", "/api/v1/rooms/{id}/messages", tok)
    check("GET", f"/api/v1/messages/{msg['id']}", "/api/v1/messages/{id}", tok)
    check("POST", f"/api/v1/rooms/{rid}/messages", "/api/v1/rooms/{id}/messages", tok,
          {"content": "no type: text"}, 201)
    check("GET", "/api/v1/rooms", "/api/v1/rooms", tok)
    check("GET", "/api/v1/rooms/discover", "/api/v1/rooms/discover", tok)
    check("GET", f"/api/v1/rooms/{rid}", "/api/v1/rooms/{id}", tok)
    check("PATCH", f"/api/v1/rooms/{rid}", "/api/v1/rooms/{id}", tok, {"topic": "specs"})
    check("GET", f"/api/v1/rooms/{rid}/members", "/api/v1/rooms/{id}/members", tok)
    check("PUT", f"/api/v1/messages/{msg['id']}/reactions/heart", "/api/v1/messages/{id}/reactions/{emoji}", tok)
    check("PUT", f"/api/v1/messages/{msg['id']}/pin", "/api/v1/messages/{id}/pin", tok, want=204)
    check("GET", f"/api/v1/rooms/{rid}/pins", "/api/v1/rooms/{id}/pins", tok)
    check("POST", f"/api/v1/rooms/{rid}/read", "/api/v1/rooms/{id}/read", tok, {"message_id": msg["id"]})
    check("GET", "/api/v1/search?q=spec", "/api/v1/search", tok)
    check("POST", f"/api/v1/rooms/{rid}/invite-code", "/api/v1/rooms/{id}/invite-code", tok)
    check("PATCH", f"/api/v1/messages/{msg['id']}", "/api/v1/messages/{id}", tok, {"content": "edited spec"})
    check("DELETE", f"/api/v1/messages/{msg['id']}", "/api/v1/messages/{id}", tok, want=204)
    check("POST", "/api/v1/dms", "/api/v1/dms", tok, {"user_id": uid}, 201)
    check("DELETE", f"/api/v1/me/tokens/{new['id']}", "/api/v1/me/tokens/{id}", tok, want=204)
    check("DELETE", f"/api/v1/admin/users/{uid}", "/api/v1/admin/users/{id}", tok, want=204)
    check("POST", "/api/v1/auth/logout", "/api/v1/auth/logout", tok, want=204)
    status, doc = call("GET", "/api/v1/me", tok)
    assert status == 401
    validate(doc, {"$ref": "#/components/schemas/Error"})


@test
def validator_catches_mismatches():
    # the checker itself must be able to fail
    for bad in [{"status": "ok"}, {"status": "meh", "db": "ok", "redis": "ok", "version": "1"},
                {"status": "ok", "db": 1, "redis": "ok", "version": "1"}]:
        try:
            validate(bad, {"$ref": "#/components/schemas/Health"})
        except AssertionError:
            continue
        raise RuntimeError(f"validator accepted {bad}")


if __name__ == "__main__":
    run_tests(stack)
