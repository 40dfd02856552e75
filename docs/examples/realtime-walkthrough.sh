#!/usr/bin/env bash
# realtime-walkthrough.sh — Roost's event stream with curl (docs/realtime.md).
# Three throw-away members made by the admin, Ana, Ben and Cy, chat in a
# private room while Ana and Ben each hold an SSE stream (`curl -N`) and Cy
# long-polls. Every message reaches all three; Ben's stream is cut and
# resumed with its last id, and gets exactly the messages he missed; Ana
# removes Cy, whose events stop at once; typing and presence show up and
# expire.
#
#   BASE_URL=http://127.0.0.1:8080 ADMIN_EMAIL=boss@example.com \
#   ADMIN_PASSWORD='the admin password' docs/examples/realtime-walkthrough.sh
#
# Every step prints what it does; anything unexpected stops the script with
# exit status 1. Needs bash, curl and python3 (to read JSON; set PYTHON).
# Takes about 20 seconds (it waits for presence to expire).
set -euo pipefail

: "${BASE_URL:?set BASE_URL, e.g. http://127.0.0.1:8080}"
: "${ADMIN_EMAIL:?set ADMIN_EMAIL (an admin made with roostctl create-admin)}"
: "${ADMIN_PASSWORD:?set ADMIN_PASSWORD}"
API=${BASE_URL%/}/api/v1
PYTHON=${PYTHON:-/usr/bin/python3}

WORK=$(mktemp -d)
PIDS=()
BODY=
STATUS=

cleanup() {
	local rc=$? p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
fail() {
	printf 'FAILED: %s\n' "$*" >&2
	[ -n "$BODY" ] && printf 'response body: %s\n' "$BODY" >&2
	exit 1
}
# json EXPR: evaluates a Python expression over the JSON document d (BODY).
json() { printf '%s' "$BODY" | "$PYTHON" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# call METHOD PATH [JSON] [TOKEN]: sets STATUS and BODY.
call() {
	local method=$1 path=$2 data=${3:-} token=${4:-}
	local args=(-sS -o "$WORK/body" -w '%{http_code}' -X "$method")
	[ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
	if [ -n "$data" ]; then
		args+=(-H 'Content-Type: application/json' --data-binary "$data")
	elif [ "$method" = POST ]; then
		args+=(-H 'Content-Length: 0')
	fi
	STATUS=$(curl "${args[@]}" "$API$path")
	BODY=$(cat "$WORK/body")
}
expect() { [ "$STATUS" = "$1" ] || fail "expected HTTP $1, got $STATUS"; }

# count_in FILE TEXT: how many times TEXT occurs in FILE (once per event:
# an SSE frame, or one event of a long-poll answer).
count_in() { { grep -o -F -- "$2" "$1" || true; } | wc -l; }
# wait_for FILE TEXT N: waits up to 5 s until FILE holds N frames with TEXT.
wait_for() {
	local i
	for i in $(seq 50); do
		[ "$(count_in "$1" "$2")" -ge "$3" ] && return 0
		sleep 0.1
	done
	fail "$1: expected $3 frame(s) with '$2', found $(count_in "$1" "$2")"
}

step "1. The admin signs in and makes Ana, Ben and Cy"
call POST /auth/login "{\"email\":\"$ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\",\"device\":\"mobile\"}"
expect 200
ADMIN=$(json 'd["token"]')
RUN=$RANDOM$RANDOM
declare -A TOKEN ID
for who in ana ben cy; do
	call POST /admin/users "{\"email\":\"$who.$RUN@example.com\",\"name\":\"$who$RUN\",\"password\":\"walkthrough-$RUN\",\"must_change_password\":false}" "$ADMIN"
	expect 201
	ID[$who]=$(json 'd["id"]')
	call POST /auth/login "{\"email\":\"$who.$RUN@example.com\",\"password\":\"walkthrough-$RUN\"}"
	expect 200
	TOKEN[$who]=$(json 'd["token"]')
	echo "$who: user ${ID[$who]}"
done

step "2. Ana makes a private room and adds Ben and Cy"
call POST /rooms '{"name":"realtime walk","kind":"private"}' "${TOKEN[ana]}"
expect 201
ROOM=$(json 'd["id"]')
call POST "/rooms/$ROOM/members" "{\"user_ids\":[${ID[ben]},${ID[cy]}]}" "${TOKEN[ana]}"
expect 200
echo "room $ROOM"

step "3. Each loads state first (GET /rooms gives the cursor to start from)"
declare -A CURSOR
for who in ana ben cy; do
	call GET /rooms "" "${TOKEN[$who]}"
	expect 200
	CURSOR[$who]=$(json 'd["event_cursor"]')
done

# sse WHO FILE CURSOR: curl -N on the stream in the background.
sse() {
	curl -sS -N -H 'Accept: text/event-stream' -H "Authorization: Bearer ${TOKEN[$1]}" \
		-H "Last-Event-ID: $3" "$API/events" >>"$2" 2>/dev/null &
	PIDS+=($!)
}

step "4. Ana and Ben open SSE streams (curl -N); Cy long-polls"
sse ana "$WORK/ana.sse" "${CURSOR[ana]}"
sse ben "$WORK/ben.sse" "${CURSOR[ben]}"
ANA_CURL=${PIDS[-2]}
BEN_CURL=${PIDS[-1]}
: >"$WORK/cy.poll"
(
	cur=${CURSOR[cy]}
	while :; do
		out=$(curl -sS -H "Authorization: Bearer ${TOKEN[cy]}" \
			"$API/events?timeout=5&last_event_id=$cur") || exit 0
		printf '%s\n' "$out" >>"$WORK/cy.poll"
		cur=$(printf '%s' "$out" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["last_event_id"])') || exit 0
	done
) &
PIDS+=($!)
CY_POLL=$!
sleep 1
echo "streams open"

step "5. They chat: 3 messages each"
for who in ana ben cy; do
	for i in 1 2 3; do
		call POST "/rooms/$ROOM/messages" "{\"type\":\"text\",\"content\":\"$who says hello $i\"}" "${TOKEN[$who]}"
		expect 201
	done
done
for f in ana.sse ben.sse; do
	wait_for "$WORK/$f" "says hello" 9
	echo "$f: 9 of 9 messages"
done
wait_for "$WORK/cy.poll" "says hello" 9
echo "cy (long-poll): 9 of 9 messages"

step "6. Ben's stream is cut; Ana sends 5 messages; Ben resumes with his last id"
kill "$BEN_CURL"
wait "$BEN_CURL" 2>/dev/null || true
LAST_ID=$(grep '^id: ' "$WORK/ben.sse" | tail -n 1 | cut -c5-)
[ -n "$LAST_ID" ] || fail "no id: line in Ben's stream"
for i in 1 2 3 4 5; do
	call POST "/rooms/$ROOM/messages" "{\"type\":\"text\",\"content\":\"while Ben was away $i\"}" "${TOKEN[ana]}"
	expect 201
done
: >"$WORK/ben2.sse"
sse ben "$WORK/ben2.sse" "$LAST_ID"
BEN_CURL=${PIDS[-1]}
wait_for "$WORK/ben2.sse" "while Ben was away" 5
[ "$(count_in "$WORK/ben2.sse" "says hello")" = 0 ] ||
	fail "the replay repeated messages from before Ben's last id"
echo "Ben got the 5 he missed, and nothing twice"

step "7. Typing: Cy starts typing; Ana and Ben see who is typing"
call POST "/rooms/$ROOM/typing" '{"state":"start"}' "${TOKEN[cy]}"
expect 204
wait_for "$WORK/ana.sse" "\"state\":\"start\"" 1
wait_for "$WORK/ben2.sse" "\"state\":\"start\"" 1
echo "typing shown (it lapses 6 s after the last start)"

step "8. Presence: GET /presence lists who is connected"
call GET /presence "" "${TOKEN[ana]}"
expect 200
ONLINE=$(json 'sorted(u["user_id"] for u in d["users"])')
for who in ana ben cy; do
	json "${ID[$who]} in [u['user_id'] for u in d['users']]" | grep -q True ||
		fail "$who is not listed online: $ONLINE"
done
echo "online: $ONLINE"

step "9. Ana removes Cy: Cy's stream stops at once"
call DELETE "/rooms/$ROOM/members/${ID[cy]}" "" "${TOKEN[ana]}"
[ "$STATUS" = 204 ] || [ "$STATUS" = 200 ] || fail "remove: HTTP $STATUS"
wait_for "$WORK/cy.poll" "member.left" 1
call POST "/rooms/$ROOM/messages" '{"type":"text","content":"after Cy left"}' "${TOKEN[ana]}"
expect 201
wait_for "$WORK/ana.sse" "after Cy left" 1
wait_for "$WORK/ben2.sse" "after Cy left" 1
sleep 1
[ "$(count_in "$WORK/cy.poll" "after Cy left")" = 0 ] || fail "Cy received a message after removal"
echo "Cy got member.left and nothing after it"

step "10. Ben closes his stream: he goes offline after a short grace"
kill "$BEN_CURL" "$CY_POLL"
wait "$BEN_CURL" "$CY_POLL" 2>/dev/null || true
for i in $(seq 40); do
	call GET /presence "" "${TOKEN[ana]}"
	json "${ID[ben]} in [u['user_id'] for u in d['users']]" | grep -q False && break
	sleep 0.5
done
json "${ID[ben]} in [u['user_id'] for u in d['users']]" | grep -q False ||
	fail "Ben is still online 20 s after closing his stream"
wait_for "$WORK/ana.sse" "\"status\":\"offline\"" 1
echo "Ben is offline; Ana's stream said so"
kill "$ANA_CURL" 2>/dev/null || true

printf '\nrealtime walkthrough: all steps passed\n'
