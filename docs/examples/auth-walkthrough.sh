#!/usr/bin/env bash
# auth-walkthrough.sh — accounts, sessions and tokens of Roost, step by step,
# with curl (docs/auth.md). Run it against a server you are allowed to add
# two throw-away users to:
#
#   BASE_URL=http://127.0.0.1:8080 ADMIN_EMAIL=boss@example.com \
#   ADMIN_PASSWORD='the admin password' docs/examples/auth-walkthrough.sh
#
# BASE_URL is the server's root (the API is under $BASE_URL/api/v1). The
# admin is one made with `roostctl create-admin`. Every step prints what it
# does and the answer's status; an unexpected answer stops the script with
# exit status 1 and the response body. Needs bash, curl and python3 (only to
# read JSON; no jq). Its sign-ins all use the right password, and only
# failed sign-ins count towards the login limits, so it can run again and
# again.
set -euo pipefail

: "${BASE_URL:?set BASE_URL, e.g. http://127.0.0.1:8080}"
: "${ADMIN_EMAIL:?set ADMIN_EMAIL (an admin made with roostctl create-admin)}"
: "${ADMIN_PASSWORD:?set ADMIN_PASSWORD}"
API=${BASE_URL%/}/api/v1
# Any Python 3 reads the JSON answers; set PYTHON to pick one.
PYTHON=${PYTHON:-python3}

BODY_FILE=$(mktemp)
trap 'rm -f "$BODY_FILE"' EXIT
STATUS=
BODY=

step() { printf '\n== %s\n' "$*"; }
fail() {
	printf 'FAILED: %s\n' "$*" >&2
	[ -n "$BODY" ] && printf 'response body: %s\n' "$BODY" >&2
	exit 1
}

# call METHOD PATH [JSON] [TOKEN]: sets STATUS and BODY.
call() {
	local method=$1 path=$2 data=${3:-} token=${4:-}
	local args=(-sS -o "$BODY_FILE" -w '%{http_code}' -X "$method")
	[ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
	if [ -n "$data" ]; then
		args+=(-H 'Content-Type: application/json' --data-binary "$data")
	elif [ "$method" != GET ]; then
		# curl sends no Content-Length for a body-less POST, and the web
		# server refuses such a POST with 411 Length Required.
		args+=(-H 'Content-Length: 0')
	fi
	STATUS=$(curl "${args[@]}" "$API$path") || fail "curl could not reach $API$path"
	BODY=$(cat "$BODY_FILE")
	printf '   %s %s -> %s\n' "$method" "$path" "$STATUS"
}

# expect STATUS [ERROR_CODE]: the last answer had this status (and error code).
expect() {
	[ "$STATUS" = "$1" ] || fail "expected HTTP $1, got $STATUS"
	if [ -n "${2:-}" ]; then
		local code
		code=$(field error.code)
		[ "$code" = "$2" ] || fail "expected error code $2, got '$code'"
		printf '   (error %s, as expected)\n' "$code"
	fi
}

# field a.b.c: that value of the last JSON answer ('' when absent, null as 'null').
field() {
	printf '%s' "$BODY" | "$PYTHON" -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("null" if v is None else str(v).lower() if isinstance(v, bool) else v)
' "$1"
}

# A JSON string literal, safely quoted.
jstr() { "$PYTHON" -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }

RUN=$(date +%s)-$$
MEMBER_EMAIL="walkthrough-$RUN@example.com"
MEMBER_PASSWORD="first password $RUN"
NEW_PASSWORD="second password $RUN"
OTHER_EMAIL="walkthrough-other-$RUN@example.com"

step "1. The admin signs in"
call POST /auth/login "{\"email\": $(jstr "$ADMIN_EMAIL"), \"password\": $(jstr "$ADMIN_PASSWORD")}"
expect 200
ADMIN_TOKEN=$(field token)
[ "$(field user.role)" = admin ] || fail "$ADMIN_EMAIL is not an admin"
printf '   signed in as %s (role admin)\n' "$(field user.email)"

step "2. The admin creates a member (who must change the password at first sign-in)"
call POST /admin/users "{\"email\": \"$MEMBER_EMAIL\", \"name\": \"Walk Through\", \"password\": \"$MEMBER_PASSWORD\"}" "$ADMIN_TOKEN"
expect 201
MEMBER_ID=$(field id)
printf '   user %s, must_change_password=%s\n' "$MEMBER_ID" "$(field must_change_password)"

step "3. The member signs in on desktop and on mobile"
call POST /auth/login "{\"email\": \"$MEMBER_EMAIL\", \"password\": \"$MEMBER_PASSWORD\", \"device\": \"desktop\"}"
expect 200
DESKTOP=$(field token)
call POST /auth/login "{\"email\": \"$MEMBER_EMAIL\", \"password\": \"$MEMBER_PASSWORD\", \"device\": \"mobile\"}"
expect 200
MOBILE=$(field token)
call GET /me "" "$MOBILE"
expect 200
printf '   both sessions live; the mobile one sees its own profile\n'
call GET /users "" "$DESKTOP"
expect 403 PASSWORD_CHANGE_REQUIRED

step "4. The member changes the password on desktop: the mobile session ends"
call POST /me/password "{\"current_password\": \"$MEMBER_PASSWORD\", \"new_password\": \"$NEW_PASSWORD\"}" "$DESKTOP"
expect 204
call GET /me "" "$DESKTOP"
expect 200
printf '   the desktop session that changed it goes on\n'
call GET /me "" "$MOBILE"
expect 401 UNAUTHORIZED
printf '   the mobile session is gone\n'

step "5. The member makes an API token and uses it"
call POST /me/tokens '{"name": "walkthrough bot"}' "$DESKTOP"
expect 201
API_TOKEN=$(field token)
API_TOKEN_ID=$(field id)
printf '   token %s... (shown only now; the server keeps only its SHA-256)\n' "$(field prefix)"
call GET /me "" "$API_TOKEN"
expect 200
printf '   the API token authenticates as user %s\n' "$(field id)"

step "6. The member signs out on desktop: that session token stops working"
call POST /auth/logout "" "$DESKTOP"
expect 204
call GET /me "" "$DESKTOP"
expect 401 UNAUTHORIZED
printf '   the desktop token is dead; the API token is not:\n'
call GET /me "" "$API_TOKEN"
expect 200

step "7. The admin suspends the member, then restores the account"
call PATCH "/admin/users/$MEMBER_ID" '{"suspended": true}' "$ADMIN_TOKEN"
expect 200
printf '   suspended=%s\n' "$(field suspended)"
call GET /me "" "$API_TOKEN"
expect 401 UNAUTHORIZED
call POST /auth/login "{\"email\": \"$MEMBER_EMAIL\", \"password\": \"$NEW_PASSWORD\"}"
expect 403 FORBIDDEN
printf '   a suspended member can neither use a token nor sign in\n'
call PATCH "/admin/users/$MEMBER_ID" '{"suspended": false}' "$ADMIN_TOKEN"
expect 200
call GET /me "" "$API_TOKEN"
expect 200
call POST /auth/login "{\"email\": \"$MEMBER_EMAIL\", \"password\": \"$NEW_PASSWORD\"}"
expect 200
printf '   restored as it was: name "%s", the API token works again\n' "$(field user.name)"
MEMBER_TOKEN=$(field token)
call DELETE "/me/tokens/$API_TOKEN_ID" "" "$MEMBER_TOKEN"
expect 204

step "8. The admin deletes another user: the account is scrubbed"
call POST /admin/users "{\"email\": \"$OTHER_EMAIL\", \"name\": \"Short Lived\", \"password\": \"$MEMBER_PASSWORD\"}" "$ADMIN_TOKEN"
expect 201
OTHER_ID=$(field id)
call DELETE "/admin/users/$OTHER_ID" "" "$ADMIN_TOKEN"
expect 204
call GET "/users/$OTHER_ID" "" "$MEMBER_TOKEN"
expect 200
[ "$(field name)" = "Deleted User" ] || fail "expected the name 'Deleted User', got '$(field name)'"
[ "$(field deleted)" = true ] || fail "expected deleted: true"
printf '   user %s is now: name "%s", deleted=%s, display_name=%s\n' \
	"$OTHER_ID" "$(field name)" "$(field deleted)" "$(field display_name)"
call POST /auth/logout "" "$MEMBER_TOKEN"
expect 204

printf '\nAll steps answered as documented.\n'
