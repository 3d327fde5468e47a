# CadenzaClient: a Node that drives a Cadenza runtime from Godot over its WebSocket gateway.
#
# It speaks the Cadenza wire (proto/PROTOCOL.md) as text frames: each frame is
# one Envelope in protobuf's canonical JSON (camelCase names, 64-bit numbers as
# strings, enums by name). The runtime runs `cadenza serve --ws HOST:PORT`; the
# socket is ws://HOST:PORT/ws.
#
#   connect ─► Hello ─► Subscribe{topics} ─► re-sync (a new runtime session:
#   LoadGraph with the last graph, then every accepted parameter with bypass)
#   ─► `connected(server)`; then requests, each answered exactly once
#   (`reply(request_id, kind, body)`; an Error also emits `error(code,
#   message, field)`), and pushed events turned into signals.
#
# Beats, bars, stingers and started/completed state changes are emitted when
# they are HEARD: each event carries `heardAt` (Unix seconds on the runtime's
# host), and the signal fires on the first frame at or after that moment on
# this machine's clock. The two clocks are compared on every Hello (the 1 s
# heartbeat): `clock_offset` = the reply's Status.unixTime minus the midpoint
# of the round trip, from the quickest of the last 8 round trips (on one
# machine it is ~0; across machines it is right to within half that round
# trip). When an event has no heardAt (0: the runtime cannot tell), or it lies
# more than `max_schedule_ahead_s` away, the signal fires on arrival, which is
# early by about the runtime's lookahead. `timing` says which was used last
# ("heard" or "arrival"). A beat or bar heard more than `max_late_s` before it
# arrived (a burst after the runtime or the game stalled) is skipped and
# counted in `signals_late`; a state change or stinger is always emitted. A
# SCHEDULED state change is emitted on arrival: it announces a change to come;
# so is a CANCELLED one (that change will not come).
#
# Reconnecting: a closed or failed socket, no WebSocket handshake within twice
# the reply timeout, or a request without a reply within its timeout (answered
# NO_REPLY), drops the connection; the client reconnects by itself with
# backoff (0.25 s doubling to 5 s). Requests still waiting get one reply each:
# an error DISCONNECTED (they may or may not have been applied). After a
# runtime restart (a new session id in Hello's reply) the last loaded graph and
# the parameter values the runtime accepted are sent again; triggers and
# state changes never are (one-shots). Parameters set while disconnected are
# sent on reconnect; triggers and state changes then fail at once
# (NOT_CONNECTED).
#
# Requests made while a LoadGraph is waiting for its reply are held and sent
# after it, so they apply to the new graph in the order they were made.
#
# Everything engine-specific (the WebSocket, JSON, clocks) is in
# cadenza_socket.gd; see README.md for what a Godot 4 port changes here.
extends Node

signal connected(server)
signal disconnected(reason)
signal error(code, message, field)
signal reply(request_id, kind, body)
signal described(description)
signal beat(bar, beat)
signal bar(bar)
signal state_changed(name, phase)
signal stinger(name)
signal event_received(topic, event)

const Socket = preload("cadenza_socket.gd")
const PROTOCOL_VERSION = 1
const MAX_MESSAGE_BYTES = 1048576
const BACKOFF_FIRST_S = 0.25
const BACKOFF_MAX_S = 5.0
const CLOCK_SAMPLES = 8
const REPLY_KINDS = ["ok", "status", "error", "graphDescription"]
# Requests that may run before a held LoadGraph's reply (they do not touch the graph).
const UNHELD = ["hello", "getStatus", "subscribe"]

enum Phase { DISCONNECTED, CONNECTING, HANDSHAKE, READY }

export var url = "ws://127.0.0.1:8765/ws"
export var autoconnect = true
export var client_name = "godot"
# Event topics pushed to this client; "mix" and "status" are left out (10/s and 1/s).
export var topics = ["beat", "bar", "state", "stinger", "warning", "xrun"]
export var timeout_s = 2.0
export var load_timeout_s = 12.0
export var heartbeat_s = 1.0
export var schedule_at_heard_time = true
export var max_schedule_ahead_s = 5.0
# A beat or bar signal whose heard time passed more than this long ago is skipped (counted in signals_late).
export var max_late_s = 0.3
# The gateway's --ws-token, when it has one (sent as "Authorization: Bearer TOKEN"; `?token=` in url works too).
export var token = ""
# Extra HTTP headers for the WebSocket handshake.
export var headers = []

var phase = Phase.DISCONNECTED
var server = {}  # ServerInfo from Hello's reply
var session_id = ""
var timing = "arrival"  # how the last beat signal was timed: "heard" or "arrival"
var last_beat = {}  # the Beat payload of the last `beat` signal, plus "heardAt" and "streamTime"
var events_lost = 0  # gaps in the per-topic sequence numbers
var signals_late = 0  # beat and bar signals skipped: heard more than max_late_s before they arrived
# The runtime's clock minus this machine's (seconds), from the Hello round trip with the least delay
# among the last few (Status.unixTime against the round trip's midpoint); 0 until known.
var clock_offset = 0.0
var reconnects = 0  # connections lost after `connected`
var last_failure = ""  # why the last connection (or attempt to connect) ended

var _socket = Socket.new()
var _next_id = 1
var _pending = {}  # request id -> {"kind", "deadline", "after"}
var _held = []  # [request id, kind, body, timeout, after] sent once the load in flight is answered
var _loading = 0  # the request id of the LoadGraph waiting for its reply
var _local = []  # replies made here (NOT_CONNECTED, TOO_LARGE …), emitted on the next frame
var _due = []  # [due unix time, signal name, args], in due order
var _sequences = {}  # topic -> last sequence number
var _graph_text = ""  # the last graph the runtime accepted
var _graph_wanted = ""  # a graph to load once connected
var _params = {}  # parameter values the runtime accepted since the last load
var _unsent = {}  # parameter values set while disconnected
var _last_sent = 0.0
var _backoff = BACKOFF_FIRST_S
var _retry_at = -1.0
var _connect_deadline = 0.0
var _clock_samples = []  # [round trip s, offset s] of the last CLOCK_SAMPLES Hello replies
var _wanted = false
var _resume = false
var _quiet = false  # leaving the tree: only `reply` is emitted (each request still gets its one reply)


func _ready():
	pause_mode = PAUSE_MODE_PROCESS  # the music's clock runs on while the game is paused
	if autoconnect:
		connect_to_runtime()


func _enter_tree():
	if _resume:  # back in the tree after _exit_tree closed the connection
		_resume = false
		connect_to_runtime()


# Leaving the tree closes the connection without signals (the listeners may be gone); re-entering reopens it.
func _exit_tree():
	_resume = _wanted
	_wanted = false
	_quiet = true
	_drop("the node left the scene tree")
	_quiet = false


# ---------------------------------------------------------------- public API

# Connect (or reconnect, e.g. to another url); requests waiting on a current connection are answered DISCONNECTED.
func connect_to_runtime(to_url = ""):
	if to_url != "":
		url = to_url
	_wanted = true
	if phase != Phase.DISCONNECTED:
		_drop("reconnecting to %s" % url)
	_open()


func close():
	_wanted = false
	_drop("closed by the client")


func is_ready():
	return phase == Phase.READY


# One parameter: a number (continuous, discrete) or a String (a labeled parameter's label).
func set_param(name, value):
	var values = {}
	values[name] = value
	return set_params(values)


# Several parameters applied together at one control tick. ramp_s >= 0: reach them over that time.
func set_params(values, ramp_s = -1.0):
	var updates = []
	for name in values:
		var update = _update(name, values[name])
		if update == null:
			return _fail_locally("setParameters", "BAD_VALUE",
				"parameter '%s': %s is no finite number or label; send a float, an int or a String" % [name, str(values[name])],
				"set_parameters.values[%d]" % updates.size())
		updates.append(update)
	if phase != Phase.READY:
		for name in values:
			_unsent[name] = values[name]
		return 0
	var body = {"values": updates}
	if ramp_s >= 0.0:
		body["rampSeconds"] = ramp_s
	return _request("setParameters", body, timeout_s, {"params": values.duplicate()})


func trigger(name):
	return _request("trigger", {"name": name})


func set_state(name):
	return _request("setState", {"name": name})


# Load a style graph from its YAML (or JSON) text; on a runtime restart it is loaded again.
func load_graph_text(text):
	if phase != Phase.READY:
		_graph_wanted = text
		return 0
	return _request("loadGraph", {"text": text}, load_timeout_s, {"graph": text})


# The GraphDescription as a Dictionary (null on an error): `yield(client.describe(), "completed")`,
# or connect to the `described` signal.
func describe():
	var request_id = _request("describeGraph", {})
	while true:
		var answer = yield(self, "reply")
		if answer[0] == request_id:
			if answer[1] == "graphDescription":
				emit_signal("described", answer[2])
				return answer[2]
			return null


# The runtime's Status as a Dictionary (null on an error): `yield(client.status(), "completed")`.
func status():
	var request_id = _request("getStatus", {})
	while true:
		var answer = yield(self, "reply")
		if answer[0] == request_id:
			return answer[2] if answer[1] == "status" else null


# Any request by its Envelope field name in camelCase ("setControls", "transport" …); returns its id.
func request(kind, body = {}):
	return _request(kind, body)


# ---------------------------------------------------------------- frame loop

func _process(_delta):
	for happened in _socket.poll():
		match happened["kind"]:
			"open":
				_on_open()
			"text":
				_on_text(happened["data"])
			"binary":
				_report("BAD_MESSAGE", "the runtime sent a binary frame to a JSON client; it was ignored", "")
			"failed":
				_lost("cannot connect to %s" % url)
			"closed":
				_lost("the runtime closed the connection")
	var now = _socket.now_mono()
	_answer_local()
	for request_id in _pending.keys():
		var waiting = _pending[request_id]
		if now > waiting["deadline"]:
			_pending.erase(request_id)
			_answer(request_id, "error", {"code": "NO_REPLY", "field": "",
				"message": "no reply to %s (request %d) within %.1f s; reconnecting" % [waiting["kind"], request_id, waiting["timeout"]]})
			_drop("no reply within the timeout")
			break
	if phase == Phase.CONNECTING and now > _connect_deadline:
		_drop("no WebSocket handshake from %s within %.1f s" % [url, timeout_s * 2.0])
	if phase == Phase.READY and now - _last_sent > heartbeat_s and _pending.empty():
		_send("hello", _hello(), timeout_s, {"heartbeat": true})
	if phase == Phase.DISCONNECTED and _wanted and _retry_at >= 0.0 and now >= _retry_at:
		_open()
	_fire_due()


# ---------------------------------------------------------------- connection

func _open():
	_socket.close()
	_retry_at = -1.0
	phase = Phase.CONNECTING
	_connect_deadline = _socket.now_mono() + timeout_s * 2.0
	var all_headers = [] + headers
	if token != "":
		all_headers.append("Authorization: Bearer " + token)
	var failure = _socket.open(url, all_headers)
	if failure != "":
		_lost(failure)


func _on_open():
	phase = Phase.HANDSHAKE
	_send("hello", _hello(), timeout_s, {"hello": true})


func _hello():
	return {"supportedVersions": [PROTOCOL_VERSION], "clientName": client_name}


func _after_hello(kind, body):
	if kind != "status":
		_drop("Hello was refused")
		return
	server = body.get("server", {})
	var new_session = str(server.get("sessionId", ""))
	var restarted = new_session != session_id
	session_id = new_session
	_backoff = BACKOFF_FIRST_S
	_send("subscribe", {"topics": topics}, timeout_s, {})
	phase = Phase.READY
	if _graph_wanted != "":
		load_graph_text(_graph_wanted)
		_graph_wanted = ""
	elif restarted and _graph_text != "":
		_request("loadGraph", {"text": _graph_text}, load_timeout_s, {"graph": _graph_text})
	var values = {}
	if restarted:
		values = _params.duplicate()
	for name in _unsent:
		values[name] = _unsent[name]
	_unsent = {}
	if not values.empty():
		var updates = []
		for name in values:
			updates.append(_update(name, values[name]))
		_request("setParameters", {"values": updates, "bypass": true}, timeout_s, {"params": values})
	emit_signal("connected", server)


# The connection is gone (or given up): every request waiting gets its one reply, then a retry is timed.
func _drop(reason):
	var was = phase
	_socket.close()
	phase = Phase.DISCONNECTED
	_loading = 0
	var ids = _pending.keys()
	ids.sort()
	var held = _held
	_pending = {}
	_held = []
	for request_id in ids:
		_answer(request_id, "error", {"code": "DISCONNECTED", "field": "",
			"message": "the connection closed before the reply (%s); the request may or may not have been applied" % reason})
	for item in held:
		_answer(item[0], "error", {"code": "DISCONNECTED", "field": "",
			"message": "not sent: the connection closed while a graph was loading (%s)" % reason})
	_due = []
	if _wanted:
		_retry_at = _socket.now_mono() + _backoff
		_backoff = min(_backoff * 2.0, BACKOFF_MAX_S)
	last_failure = reason
	if was == Phase.READY and not _quiet:  # a failed attempt to connect is no disconnection: see last_failure
		reconnects += 1
		emit_signal("disconnected", reason)


func _lost(reason):
	if phase == Phase.DISCONNECTED and _retry_at >= 0.0:
		return
	_drop(reason)


# ---------------------------------------------------------------- requests and replies

func _request(kind, body, timeout = -1.0, after = {}):
	if timeout < 0.0:
		timeout = timeout_s
	if phase != Phase.READY:
		return _fail_locally(kind, "NOT_CONNECTED",
			"not connected to the runtime at %s: %s was not sent (the client reconnects by itself)" % [url, kind], "")
	if _loading != 0 and not (kind in UNHELD):
		var request_id = _take_id()
		_held.append([request_id, kind, body, timeout, after])
		return request_id
	return _send(kind, body, timeout, after)


func _send(kind, body, timeout, after, request_id = 0):
	if request_id == 0:
		request_id = _take_id()
	var envelope = {"protocolVersion": PROTOCOL_VERSION, "requestId": str(request_id)}
	envelope[kind] = body
	var text = _socket.encode_json(envelope)
	if text.to_utf8().size() > MAX_MESSAGE_BYTES:
		_local.append([request_id, "error", {"code": "TOO_LARGE", "field": "",
			"message": "%s is %d bytes, over the 1 MiB limit; split it" % [kind, text.to_utf8().size()]}])
		return request_id
	if not _socket.send_text(text):
		_local.append([request_id, "error", {"code": "NOT_CONNECTED", "field": "",
			"message": "could not send %s to %s" % [kind, url]}])
		return request_id
	_last_sent = _socket.now_mono()
	_pending[request_id] = {"kind": kind, "deadline": _last_sent + timeout, "timeout": timeout, "after": after,
		"sent": _last_sent, "sent_unix": _socket.now_unix()}
	if kind == "loadGraph":
		_loading = request_id
	return request_id


func _take_id():
	var request_id = _next_id
	_next_id += 1
	return request_id


func _fail_locally(kind, code, message, field):
	var request_id = _take_id()
	_local.append([request_id, "error", {"code": code, "message": message, "field": field}])
	return request_id


func _answer_local():
	var local = _local
	_local = []
	for item in local:
		_answer(item[0], item[1], item[2])


func _on_text(text):
	var envelope = _socket.decode_json(text)
	if envelope == null:
		_report("BAD_MESSAGE", "the runtime sent a frame that is no JSON object: %s" % text.substr(0, 200), "")
		return
	if envelope.has("event"):
		_on_event(envelope["event"])
		return
	for kind in REPLY_KINDS:
		if envelope.has(kind):
			var request_id = int(envelope.get("requestId", "0"))
			if request_id == 0 and _pending.size() == 1:  # an Error whose id could not be read
				request_id = _pending.keys()[0]
			if not _pending.has(request_id):
				if kind == "error":
					_report_error(envelope[kind])
				return  # a late reply to a request already answered (timed out)
			var waiting = _pending[request_id]
			_pending.erase(request_id)
			_after_reply(request_id, waiting, kind, envelope[kind])
			return
	_report("BAD_MESSAGE", "the runtime sent an envelope with no reply or event: %s" % text.substr(0, 200), "")


func _after_reply(request_id, waiting, kind, body):
	var after = waiting["after"]
	if kind == "status" and waiting["kind"] == "hello":
		_clock_sample(waiting, body)
	if after.has("hello"):
		_answer(request_id, kind, body)
		_after_hello(kind, body)
		return
	if kind == "ok":
		if after.has("graph"):
			_graph_text = after["graph"]
			_params = {}
		if after.has("params"):
			for name in after["params"]:
				_params[name] = after["params"][name]
	_answer(request_id, kind, body)
	if request_id == _loading:
		_loading = 0
		var held = _held
		_held = []
		for item in held:
			if phase == Phase.READY:
				_send(item[1], item[2], item[3], item[4], item[0])
			else:
				_answer(item[0], "error", {"code": "NOT_CONNECTED", "field": "", "message": "not sent: disconnected"})


# One round trip's estimate of the clock offset; the one with the least delay wins (it bounds the error).
func _clock_sample(waiting, status):
	var unix_time = float(status.get("unixTime", 0.0))
	if unix_time <= 0.0:
		return
	var round_trip = _socket.now_mono() - waiting["sent"]
	_clock_samples.append([round_trip, unix_time - (waiting["sent_unix"] + round_trip / 2.0)])
	if _clock_samples.size() > CLOCK_SAMPLES:
		_clock_samples.pop_front()
	var best = _clock_samples[0]
	for sample in _clock_samples:
		if sample[0] < best[0]:
			best = sample
	clock_offset = best[1]


func _answer(request_id, kind, body):
	if kind == "error" and not _quiet:
		_report_error(body)
	emit_signal("reply", request_id, kind, body)


func _report_error(body):
	_report(str(body.get("code", "CODE_UNSPECIFIED")), str(body.get("message", "")), str(body.get("field", "")))


func _report(code, message, field):
	emit_signal("error", code, message, field)


func _update(name, value):
	match typeof(value):
		TYPE_INT, TYPE_REAL:
			if is_nan(float(value)) or is_inf(float(value)):
				return null
			return {"name": name, "number": float(value)}
		TYPE_STRING:
			return {"name": name, "label": value}
	return null


# ---------------------------------------------------------------- events

func _on_event(event):
	var topic = str(event.get("topic", ""))
	var sequence = int(event.get("sequence", "0"))
	var last = int(_sequences.get(topic, 0))
	if sequence > last + 1 and last > 0:
		events_lost += sequence - last - 1
	_sequences[topic] = sequence
	emit_signal("event_received", topic, event)
	var payload = event.get(topic, {})
	match topic:
		"beat":
			var beat = payload.duplicate()
			beat["heardAt"] = float(event.get("heardAt", 0.0))
			beat["streamTime"] = int(event.get("streamTime", "0"))
			_schedule(event, "beat", [int(payload.get("bar", "0")), int(payload.get("beatInBar", 0))], beat, true)
		"bar":
			_schedule(event, "bar", [int(payload.get("bar", "0"))], null, true)
		"state":
			var args = [str(payload.get("name", "")), str(payload.get("phase", "PHASE_UNSPECIFIED"))]
			if args[1] == "SCHEDULED" or args[1] == "CANCELLED":
				emit_signal("state_changed", args[0], args[1])
			else:
				_schedule(event, "state_changed", args, null, false)
		"stinger":
			_schedule(event, "stinger", [str(payload.get("name", ""))], null, false)


# Time an event's signal: at its heard time on this machine's clock, or now (see the top of this file).
# A beat or bar heard more than max_late_s ago is not signalled (a burst after a stall); it is counted.
func _schedule(event, signal_name, args, beat, droppable):
	var heard_at = float(event.get("heardAt", 0.0))
	var now = _socket.now_unix()
	var due = now
	var how = "arrival"
	if schedule_at_heard_time and heard_at > 0.0:
		var here = heard_at - clock_offset
		if abs(here - now) <= max_schedule_ahead_s:
			if droppable and here < now - max_late_s:
				signals_late += 1
				return
			due = here
			how = "heard"
	var item = [due, signal_name, args, beat, how]
	var at = _due.size()
	while at > 0 and _due[at - 1][0] > due:
		at -= 1
	_due.insert(at, item)
	if due <= now:
		_fire_due()


func _fire_due():
	var now = _socket.now_unix()
	while not _due.empty() and _due[0][0] <= now:
		var item = _due.pop_front()
		if item[3] != null:
			last_beat = item[3]
			timing = item[4]
		callv("emit_signal", [item[1]] + item[2])
