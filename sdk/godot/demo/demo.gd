# The demo: a danger slider, a button per state and a trigger, and a label that flashes on each heard beat.
#
# Run a runtime with the gateway first:
#   cadenza serve --ws 127.0.0.1:8765 --graph examples/action_game/graph.yaml
# then press Play (F5) in the editor on this project (sdk/godot).
extends Control

onready var cadenza = $Cadenza
onready var beat_label = $Box/Beat
onready var state_label = $Box/State
onready var danger = $Box/Danger


func _ready():
	cadenza.connect("connected", self, "_on_connected")
	cadenza.connect("disconnected", self, "_on_disconnected")
	cadenza.connect("beat", self, "_on_beat")
	cadenza.connect("state_changed", self, "_on_state_changed")
	cadenza.connect("stinger", self, "_on_stinger")
	cadenza.connect("error", self, "_on_error")
	danger.connect("value_changed", self, "_on_danger")
	for state in ["explore", "tension", "combat"]:
		var button = Button.new()
		button.text = state
		button.connect("pressed", cadenza, "set_state", [state])
		$Box/States.add_child(button)
	var victory = Button.new()
	victory.text = "boss_defeated"
	victory.connect("pressed", cadenza, "trigger", ["boss_defeated"])
	$Box/States.add_child(victory)


func _process(delta):
	beat_label.modulate.a = max(0.3, beat_label.modulate.a - delta * 3.0)


func _on_connected(server):
	state_label.text = "connected to %s (%s backend)" % [cadenza.url, server.get("backend", "?")]


func _on_disconnected(reason):
	state_label.text = "disconnected: %s (reconnecting)" % reason


func _on_beat(bar, beat):
	beat_label.text = "bar %d  beat %d" % [bar, beat + 1]
	beat_label.modulate.a = 1.0


func _on_state_changed(name, phase):
	state_label.text = "state %s: %s" % [name, phase]


func _on_stinger(name):
	state_label.text = "stinger %s" % name


func _on_error(code, message, field):
	push_warning("cadenza %s: %s (%s)" % [code, message, field])


func _on_danger(value):
	cadenza.set_param("danger", value)
