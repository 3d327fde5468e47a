# The editor plugin: registers the CadenzaClient node type (Create Node dialog) while the addon is enabled.
tool
extends EditorPlugin


func _enter_tree():
	add_custom_type("CadenzaClient", "Node", preload("CadenzaClient.gd"), null)


func _exit_tree():
	remove_custom_type("CadenzaClient")
