# Drives the Cadenza addon in a headless Godot for tests/test_godot.py; prints what it received as JSON lines.
#
#   godot3-server --path PROJECT -s res://drive_client.gd
#
# PROJECT is a copy of sdk/godot with this file beside project.godot. Environment:
# CADENZA_WS_URL (the gateway), CADENZA_GRAPH (a graph file whose TEXT is sent),
# CADENZA_STATE (the state to request), CADENZA_BEATS (beat signals to wait for
# after the state change started; then the trigger boss_defeated, and the run
# ends with its stinger), CADENZA_RECONNECT=1 (instead: wait for a reconnect to
# a new runtime session and CADENZA_BEATS more beats from it),
# CADENZA_DEADLINE_S. Each output line is "CADENZA " + one JSON object with a
# "sig" key and "t" (Unix seconds when it was printed); the exit code is 0 when
# the run finished, 1 on the deadline or a failed step.
extends SceneTree

const Client = preload("res://addons/cadenza/CadenzaClient.gd")

var client
var beats_wanted = 12
var reconnect = false
var deadline_ms = 0
var started = false  # the requested state change was heard
var beats_after_start = 0
var first_session = ""
var beats_in_second_session = 0
var demo = null
var arrived = {}  # beat index -> when its event arrived (Unix seconds)


func _initialize():
	Engine.target_fps = 200  # 5 ms frames: beat signals land within one frame of their heard time
	beats_wanted = int(OS.get_environment("CADENZA_BEATS"))
	reconnect = OS.get_environment("CADENZA_RECONNECT") == "1"
	deadline_ms = OS.get_ticks_msec() + int(float(OS.get_environment("CADENZA_DEADLINE_S")) * 1000.0)
	# the demo scene runs beside the test's own client, on the same runtime
	var scene = load("res://demo/demo.tscn")
	demo = scene.instance() if scene != null else null
	if demo == null:
		out({"sig": "fail", "why": "the demo scene does not load"})
		quit(1)
		return
	demo.get_node("Cadenza").url = OS.get_environment("CADENZA_WS_URL")
	get_root().add_child(demo)
	out({"sig": "demo_loaded"})
	client = Client.new()
	client.name = "Cadenza"
	client.url = OS.get_environment("CADENZA_WS_URL")
	client.client_name = "godot-test"
	for sig in ["connected", "disconnected", "error", "beat", "bar", "state_changed", "stinger", "event_received",
			"reply"]:
		client.connect(sig, self, "_on_" + sig)
	get_root().add_child(client)


func _idle(_delta):
	if OS.get_ticks_msec() > deadline_ms:
		out({"sig": "fail", "why": "deadline", "beats_after_start": beats_after_start})
		quit(1)
	return false


func out(fields):
	fields["t"] = OS.get_system_time_msecs() / 1000.0
	print("CADENZA " + to_json(fields))


func _on_connected(server):
	out({"sig": "connected", "session": server.get("sessionId", ""), "backend": server.get("backend", "")})
	if first_session == "":
		first_session = str(server.get("sessionId", ""))
		_run()
	elif str(server.get("sessionId", "")) != first_session:
		out({"sig": "new_session"})


func _on_disconnected(reason):
	out({"sig": "disconnected", "reason": reason})


func _on_error(code, message, field):
	out({"sig": "error", "code": code, "message": message, "field": field})


func _on_beat(bar, beat):
	var last = client.last_beat
	out({"sig": "beat", "bar": bar, "beat": beat, "index": int(last.get("beat", "0")),
		"heard_at": last.get("heardAt", 0.0), "stream_time": last.get("streamTime", 0),
		"timing": client.timing, "session": client.session_id, "arrived": arrived.get(int(last.get("beat", "0")), 0.0),
		"clock_offset": client.clock_offset})
	if started and client.session_id == first_session:
		beats_after_start += 1
		if beats_after_start == beats_wanted:
			if reconnect:
				out({"sig": "phase1_done"})
			else:
				_trigger_victory()
	elif client.session_id != first_session:
		beats_in_second_session += 1
		if beats_in_second_session == beats_wanted:
			_finish()


func _on_reply(request_id, kind, _body):
	out({"sig": "replied", "id": request_id, "kind": kind})


func _on_event_received(topic, event):
	if topic == "beat":
		arrived[int(event["beat"].get("beat", "0"))] = OS.get_system_time_msecs() / 1000.0


func _on_bar(bar):
	out({"sig": "bar", "bar": bar})


func _on_state_changed(name, phase):
	out({"sig": "state_changed", "name": name, "phase": phase})
	if name == OS.get_environment("CADENZA_STATE") and phase == "STARTED":
		started = true


func _on_stinger(name):
	out({"sig": "stinger", "name": name})
	if name == "victory" and not reconnect:
		_finish()


func _finish():
	out({"sig": "demo", "beat": demo.get_node("Box/Beat").text, "state": demo.get_node("Box/State").text})
	out({"sig": "done", "events_lost": client.events_lost, "reconnects": client.reconnects,
		"signals_late": client.signals_late, "clock_offset": client.clock_offset})
	quit(0)


# The scripted session: load the graph's text, set danger, describe, request the state change.
func _run():
	var file = File.new()
	if file.open(OS.get_environment("CADENZA_GRAPH"), File.READ) != OK:
		out({"sig": "fail", "why": "cannot read CADENZA_GRAPH"})
		quit(1)
		return
	var text = file.get_as_text()
	file.close()
	# set_param right after the load, without waiting: the client holds it until the graph is in
	var load_id = client.load_graph_text(text)
	var param_id = client.set_param("danger", 0.8)
	var answer = yield(_reply(load_id), "completed")
	out({"sig": "reply", "to": "load_graph", "kind": answer[1], "body": answer[2], "id": load_id})
	answer = yield(_reply(param_id), "completed")
	out({"sig": "reply", "to": "set_param", "kind": answer[1], "body": answer[2], "id": param_id})
	var description = yield(client.describe(), "completed")
	var names = []
	var states = []
	if description != null:
		for parameter in description.get("parameters", []):
			names.append(parameter.get("name", ""))
		for state in description.get("states", []):
			states.append(state.get("name", ""))
	out({"sig": "described", "name": description.get("name", "") if description != null else null,
		"parameters": names, "states": states})
	answer = yield(_reply(client.set_state(OS.get_environment("CADENZA_STATE"))), "completed")
	out({"sig": "reply", "to": "set_state", "kind": answer[1], "body": answer[2]})
	answer = yield(_reply(client.set_param("dnager", 0.5)), "completed")  # a typo: one error, nothing applied
	out({"sig": "reply", "to": "bad_param", "kind": answer[1], "body": answer[2]})


# After the beats: a trigger whose stinger is heard at the next bar (and whose set_state goes back to explore).
func _trigger_victory():
	var answer = yield(_reply(client.trigger("boss_defeated")), "completed")
	out({"sig": "reply", "to": "trigger", "kind": answer[1], "body": answer[2]})


func _reply(request_id):
	while true:
		var answer = yield(client, "reply")
		if answer[0] == request_id:
			return answer
