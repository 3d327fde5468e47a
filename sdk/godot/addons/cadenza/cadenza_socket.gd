# The engine-specific part of the Cadenza addon, Godot 3.x: a WebSocket, JSON and the wall clock.
#
# CadenzaClient.gd keeps all protocol logic and calls only the functions below,
# so a Godot 4 port rewrites this one file (see README.md, "Godot 4"):
#   WebSocketClient + poll()/signals  -> WebSocketPeer: connect_to_url(), poll(),
#                                        get_ready_state(), get_packet(), send_text()
#   JSON.parse(text).result           -> JSON.parse_string(text)
#   to_json(value)                    -> JSON.stringify(value)
#   OS.get_system_time_msecs()        -> Time.get_unix_time_from_system()
#   OS.get_ticks_msec()               -> Time.get_ticks_msec()
#
# The socket is polled: poll() returns what happened since the last call as a
# list of dictionaries {"kind": "open" | "text" | "closed" | "failed", "data": …},
# the model Godot 4's WebSocketPeer already has. Text frames only: the runtime
# answers a text frame with a text frame, in protobuf's canonical JSON.
extends Reference

# Frames larger than this are refused by Godot 3's buffers unless raised (the
# runtime accepts up to 1 MiB; a GraphDescription or a graph text fits easily).
const BUFFER_KB = 1024
const MAX_PACKETS = 4096

var _ws = null
var _happened = []
var _open = false


func open(url, headers = []):
	close()
	_happened = []
	_ws = WebSocketClient.new()
	_ws.set_buffers(BUFFER_KB, MAX_PACKETS, BUFFER_KB, MAX_PACKETS)
	_ws.connect("connection_established", self, "_on_established")
	_ws.connect("connection_error", self, "_on_failed")
	_ws.connect("connection_closed", self, "_on_closed")
	_ws.connect("server_close_request", self, "_on_close_request")
	_ws.connect("data_received", self, "_on_data")
	var err = _ws.connect_to_url(url, PoolStringArray(), false, PoolStringArray(headers))
	if err != OK:
		_ws = null
		return "cannot open %s (Godot error %d)" % [url, err]
	return ""


func close():
	if _ws != null:
		_ws.disconnect_from_host(1000, "client closed")
		_ws = null
	_open = false


func is_open():
	return _open


func poll():
	var ws = _ws  # held while polling: a close signal drops _ws from inside ws.poll()
	if ws != null:
		ws.poll()
	var out = _happened
	_happened = []
	return out


func send_text(text):
	if not _open:
		return false
	var peer = _ws.get_peer(1)
	peer.set_write_mode(WebSocketPeer.WRITE_MODE_TEXT)
	return peer.put_packet(text.to_utf8()) == OK


func encode_json(value):
	return to_json(value)


# The parsed value, or null when the text is no JSON object.
func decode_json(text):
	var parsed = JSON.parse(text)
	if parsed.error != OK or typeof(parsed.result) != TYPE_DICTIONARY:
		return null
	return parsed.result


# Unix time in seconds (the clock Event.heard_at is given in).
func now_unix():
	return OS.get_system_time_msecs() / 1000.0


# A monotonic clock in seconds, for timeouts and backoff.
func now_mono():
	return OS.get_ticks_msec() / 1000.0


func _on_established(_protocol):
	_open = true
	_happened.append({"kind": "open", "data": null})


func _on_failed():
	_open = false
	_ws = null
	_happened.append({"kind": "failed", "data": null})


func _on_close_request(_code, _reason):
	pass


func _on_closed(_was_clean):
	_open = false
	_ws = null
	_happened.append({"kind": "closed", "data": null})


func _on_data():
	if _ws == null:
		return
	var peer = _ws.get_peer(1)
	while peer.get_available_packet_count() > 0:
		var packet = peer.get_packet()
		if peer.was_string_packet():
			_happened.append({"kind": "text", "data": packet.get_string_from_utf8()})
		else:
			_happened.append({"kind": "binary", "data": packet})
