from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Envelope(_message.Message):
    __slots__ = ("protocol_version", "request_id", "hello", "load_graph", "set_parameters", "trigger", "set_state", "set_prompts", "set_controls", "transport", "get_status", "describe_graph", "subscribe", "ok", "status", "error", "graph_description", "event", "audio_chunk")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    LOAD_GRAPH_FIELD_NUMBER: _ClassVar[int]
    SET_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    SET_STATE_FIELD_NUMBER: _ClassVar[int]
    SET_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    SET_CONTROLS_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    GET_STATUS_FIELD_NUMBER: _ClassVar[int]
    DESCRIBE_GRAPH_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    GRAPH_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CHUNK_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    request_id: int
    hello: Hello
    load_graph: LoadGraph
    set_parameters: SetParameters
    trigger: Trigger
    set_state: SetState
    set_prompts: SetPrompts
    set_controls: SetControls
    transport: Transport
    get_status: GetStatus
    describe_graph: DescribeGraph
    subscribe: Subscribe
    ok: Ok
    status: Status
    error: Error
    graph_description: GraphDescription
    event: Event
    audio_chunk: AudioChunk
    def __init__(self, protocol_version: _Optional[int] = ..., request_id: _Optional[int] = ..., hello: _Optional[_Union[Hello, _Mapping]] = ..., load_graph: _Optional[_Union[LoadGraph, _Mapping]] = ..., set_parameters: _Optional[_Union[SetParameters, _Mapping]] = ..., trigger: _Optional[_Union[Trigger, _Mapping]] = ..., set_state: _Optional[_Union[SetState, _Mapping]] = ..., set_prompts: _Optional[_Union[SetPrompts, _Mapping]] = ..., set_controls: _Optional[_Union[SetControls, _Mapping]] = ..., transport: _Optional[_Union[Transport, _Mapping]] = ..., get_status: _Optional[_Union[GetStatus, _Mapping]] = ..., describe_graph: _Optional[_Union[DescribeGraph, _Mapping]] = ..., subscribe: _Optional[_Union[Subscribe, _Mapping]] = ..., ok: _Optional[_Union[Ok, _Mapping]] = ..., status: _Optional[_Union[Status, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., graph_description: _Optional[_Union[GraphDescription, _Mapping]] = ..., event: _Optional[_Union[Event, _Mapping]] = ..., audio_chunk: _Optional[_Union[AudioChunk, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("supported_versions", "client_name")
    SUPPORTED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    supported_versions: _containers.RepeatedScalarFieldContainer[int]
    client_name: str
    def __init__(self, supported_versions: _Optional[_Iterable[int]] = ..., client_name: _Optional[str] = ...) -> None: ...

class LoadGraph(_message.Message):
    __slots__ = ("text", "path", "format", "base_dir")
    class Format(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FORMAT_UNSPECIFIED: _ClassVar[LoadGraph.Format]
        YAML: _ClassVar[LoadGraph.Format]
        JSON: _ClassVar[LoadGraph.Format]
    FORMAT_UNSPECIFIED: LoadGraph.Format
    YAML: LoadGraph.Format
    JSON: LoadGraph.Format
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    BASE_DIR_FIELD_NUMBER: _ClassVar[int]
    text: str
    path: str
    format: LoadGraph.Format
    base_dir: str
    def __init__(self, text: _Optional[str] = ..., path: _Optional[str] = ..., format: _Optional[_Union[LoadGraph.Format, str]] = ..., base_dir: _Optional[str] = ...) -> None: ...

class ParameterUpdate(_message.Message):
    __slots__ = ("name", "number", "label")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    number: float
    label: str
    def __init__(self, name: _Optional[str] = ..., number: _Optional[float] = ..., label: _Optional[str] = ...) -> None: ...

class SetParameters(_message.Message):
    __slots__ = ("values", "ramp_seconds", "ramp_shape", "bypass", "client_time", "clamp")
    class RampShape(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RAMP_SHAPE_UNSPECIFIED: _ClassVar[SetParameters.RampShape]
        LINEAR: _ClassVar[SetParameters.RampShape]
        S_CURVE: _ClassVar[SetParameters.RampShape]
        LOG: _ClassVar[SetParameters.RampShape]
        EXP: _ClassVar[SetParameters.RampShape]
        SINE: _ClassVar[SetParameters.RampShape]
        CONSTANT: _ClassVar[SetParameters.RampShape]
    RAMP_SHAPE_UNSPECIFIED: SetParameters.RampShape
    LINEAR: SetParameters.RampShape
    S_CURVE: SetParameters.RampShape
    LOG: SetParameters.RampShape
    EXP: SetParameters.RampShape
    SINE: SetParameters.RampShape
    CONSTANT: SetParameters.RampShape
    VALUES_FIELD_NUMBER: _ClassVar[int]
    RAMP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RAMP_SHAPE_FIELD_NUMBER: _ClassVar[int]
    BYPASS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TIME_FIELD_NUMBER: _ClassVar[int]
    CLAMP_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[ParameterUpdate]
    ramp_seconds: float
    ramp_shape: SetParameters.RampShape
    bypass: bool
    client_time: float
    clamp: bool
    def __init__(self, values: _Optional[_Iterable[_Union[ParameterUpdate, _Mapping]]] = ..., ramp_seconds: _Optional[float] = ..., ramp_shape: _Optional[_Union[SetParameters.RampShape, str]] = ..., bypass: _Optional[bool] = ..., client_time: _Optional[float] = ..., clamp: _Optional[bool] = ...) -> None: ...

class Trigger(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class SetState(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WeightedPrompt(_message.Message):
    __slots__ = ("text", "audio_path", "weight")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_PATH_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    text: str
    audio_path: str
    weight: float
    def __init__(self, text: _Optional[str] = ..., audio_path: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class SetPrompts(_message.Message):
    __slots__ = ("prompts",)
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    prompts: _containers.RepeatedCompositeFieldContainer[WeightedPrompt]
    def __init__(self, prompts: _Optional[_Iterable[_Union[WeightedPrompt, _Mapping]]] = ...) -> None: ...

class NoteSet(_message.Message):
    __slots__ = ("midi",)
    MIDI_FIELD_NUMBER: _ClassVar[int]
    midi: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, midi: _Optional[_Iterable[int]] = ...) -> None: ...

class Controls(_message.Message):
    __slots__ = ("bpm", "density", "brightness", "scale", "mute_bass", "mute_drums", "temperature", "top_k", "guidance", "seed", "notes", "drums")
    BPM_FIELD_NUMBER: _ClassVar[int]
    DENSITY_FIELD_NUMBER: _ClassVar[int]
    BRIGHTNESS_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    MUTE_BASS_FIELD_NUMBER: _ClassVar[int]
    MUTE_DRUMS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    DRUMS_FIELD_NUMBER: _ClassVar[int]
    bpm: float
    density: float
    brightness: float
    scale: str
    mute_bass: bool
    mute_drums: bool
    temperature: float
    top_k: int
    guidance: float
    seed: int
    notes: NoteSet
    drums: bool
    def __init__(self, bpm: _Optional[float] = ..., density: _Optional[float] = ..., brightness: _Optional[float] = ..., scale: _Optional[str] = ..., mute_bass: _Optional[bool] = ..., mute_drums: _Optional[bool] = ..., temperature: _Optional[float] = ..., top_k: _Optional[int] = ..., guidance: _Optional[float] = ..., seed: _Optional[int] = ..., notes: _Optional[_Union[NoteSet, _Mapping]] = ..., drums: _Optional[bool] = ...) -> None: ...

class SetControls(_message.Message):
    __slots__ = ("controls", "clear")
    CONTROLS_FIELD_NUMBER: _ClassVar[int]
    CLEAR_FIELD_NUMBER: _ClassVar[int]
    controls: Controls
    clear: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, controls: _Optional[_Union[Controls, _Mapping]] = ..., clear: _Optional[_Iterable[str]] = ...) -> None: ...

class Transport(_message.Message):
    __slots__ = ("action",)
    class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ACTION_UNSPECIFIED: _ClassVar[Transport.Action]
        PLAY: _ClassVar[Transport.Action]
        PAUSE: _ClassVar[Transport.Action]
        STOP: _ClassVar[Transport.Action]
        RESET_CONTEXT: _ClassVar[Transport.Action]
    ACTION_UNSPECIFIED: Transport.Action
    PLAY: Transport.Action
    PAUSE: Transport.Action
    STOP: Transport.Action
    RESET_CONTEXT: Transport.Action
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: Transport.Action
    def __init__(self, action: _Optional[_Union[Transport.Action, str]] = ...) -> None: ...

class GetStatus(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeGraph(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Subscribe(_message.Message):
    __slots__ = ("topics", "audio")
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    topics: _containers.RepeatedScalarFieldContainer[str]
    audio: AudioChunk.SampleFormat
    def __init__(self, topics: _Optional[_Iterable[str]] = ..., audio: _Optional[_Union[AudioChunk.SampleFormat, str]] = ...) -> None: ...

class Ok(_message.Message):
    __slots__ = ("stream_time", "warnings")
    STREAM_TIME_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    stream_time: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stream_time: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("protocol_version", "supported_versions", "server_version", "backend", "controls", "audio_prompts", "beat_grid", "sample_rate", "channels", "session_id", "endpoints")
    class EndpointsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUPPORTED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    CONTROLS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    BEAT_GRID_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    supported_versions: _containers.RepeatedScalarFieldContainer[int]
    server_version: str
    backend: str
    controls: _containers.RepeatedScalarFieldContainer[str]
    audio_prompts: bool
    beat_grid: bool
    sample_rate: int
    channels: int
    session_id: str
    endpoints: _containers.ScalarMap[str, str]
    def __init__(self, protocol_version: _Optional[int] = ..., supported_versions: _Optional[_Iterable[int]] = ..., server_version: _Optional[str] = ..., backend: _Optional[str] = ..., controls: _Optional[_Iterable[str]] = ..., audio_prompts: _Optional[bool] = ..., beat_grid: _Optional[bool] = ..., sample_rate: _Optional[int] = ..., channels: _Optional[int] = ..., session_id: _Optional[str] = ..., endpoints: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ParameterValue(_message.Message):
    __slots__ = ("number", "label")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    number: float
    label: str
    def __init__(self, number: _Optional[float] = ..., label: _Optional[str] = ...) -> None: ...

class Status(_message.Message):
    __slots__ = ("server", "graph_loaded", "graph_name", "state", "weights", "controls", "parameters", "stream_time", "playing", "xruns", "lookahead_ms", "event_sequences", "audio_sequence", "events_dropped", "replies_dropped", "sink_faults", "faults", "faults_total", "effective_controls", "pending_state", "pending_state_time", "control_disconnects", "control_connections", "requests", "heard_time", "unix_time")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ParameterValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ParameterValue, _Mapping]] = ...) -> None: ...
    class EventSequencesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class SinkFaultsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class FaultsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class RequestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SERVER_FIELD_NUMBER: _ClassVar[int]
    GRAPH_LOADED_FIELD_NUMBER: _ClassVar[int]
    GRAPH_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    CONTROLS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STREAM_TIME_FIELD_NUMBER: _ClassVar[int]
    PLAYING_FIELD_NUMBER: _ClassVar[int]
    XRUNS_FIELD_NUMBER: _ClassVar[int]
    LOOKAHEAD_MS_FIELD_NUMBER: _ClassVar[int]
    EVENT_SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_DROPPED_FIELD_NUMBER: _ClassVar[int]
    REPLIES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    SINK_FAULTS_FIELD_NUMBER: _ClassVar[int]
    FAULTS_FIELD_NUMBER: _ClassVar[int]
    FAULTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_CONTROLS_FIELD_NUMBER: _ClassVar[int]
    PENDING_STATE_FIELD_NUMBER: _ClassVar[int]
    PENDING_STATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CONTROL_DISCONNECTS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    HEARD_TIME_FIELD_NUMBER: _ClassVar[int]
    UNIX_TIME_FIELD_NUMBER: _ClassVar[int]
    server: ServerInfo
    graph_loaded: bool
    graph_name: str
    state: str
    weights: _containers.ScalarMap[str, float]
    controls: Controls
    parameters: _containers.MessageMap[str, ParameterValue]
    stream_time: int
    playing: bool
    xruns: int
    lookahead_ms: float
    event_sequences: _containers.ScalarMap[str, int]
    audio_sequence: int
    events_dropped: int
    replies_dropped: int
    sink_faults: _containers.ScalarMap[str, str]
    faults: _containers.ScalarMap[str, str]
    faults_total: int
    effective_controls: Controls
    pending_state: str
    pending_state_time: int
    control_disconnects: int
    control_connections: int
    requests: _containers.ScalarMap[str, int]
    heard_time: int
    unix_time: float
    def __init__(self, server: _Optional[_Union[ServerInfo, _Mapping]] = ..., graph_loaded: _Optional[bool] = ..., graph_name: _Optional[str] = ..., state: _Optional[str] = ..., weights: _Optional[_Mapping[str, float]] = ..., controls: _Optional[_Union[Controls, _Mapping]] = ..., parameters: _Optional[_Mapping[str, ParameterValue]] = ..., stream_time: _Optional[int] = ..., playing: _Optional[bool] = ..., xruns: _Optional[int] = ..., lookahead_ms: _Optional[float] = ..., event_sequences: _Optional[_Mapping[str, int]] = ..., audio_sequence: _Optional[int] = ..., events_dropped: _Optional[int] = ..., replies_dropped: _Optional[int] = ..., sink_faults: _Optional[_Mapping[str, str]] = ..., faults: _Optional[_Mapping[str, str]] = ..., faults_total: _Optional[int] = ..., effective_controls: _Optional[_Union[Controls, _Mapping]] = ..., pending_state: _Optional[str] = ..., pending_state_time: _Optional[int] = ..., control_disconnects: _Optional[int] = ..., control_connections: _Optional[int] = ..., requests: _Optional[_Mapping[str, int]] = ..., heard_time: _Optional[int] = ..., unix_time: _Optional[float] = ...) -> None: ...

class ParameterInfo(_message.Message):
    __slots__ = ("name", "kind", "min", "max", "labels", "default_value", "value", "builtin")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ParameterInfo.Kind]
        CONTINUOUS: _ClassVar[ParameterInfo.Kind]
        DISCRETE: _ClassVar[ParameterInfo.Kind]
        LABELED: _ClassVar[ParameterInfo.Kind]
    KIND_UNSPECIFIED: ParameterInfo.Kind
    CONTINUOUS: ParameterInfo.Kind
    DISCRETE: ParameterInfo.Kind
    LABELED: ParameterInfo.Kind
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: ParameterInfo.Kind
    min: float
    max: float
    labels: _containers.RepeatedScalarFieldContainer[str]
    default_value: ParameterValue
    value: ParameterValue
    builtin: bool
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[ParameterInfo.Kind, str]] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., labels: _Optional[_Iterable[str]] = ..., default_value: _Optional[_Union[ParameterValue, _Mapping]] = ..., value: _Optional[_Union[ParameterValue, _Mapping]] = ..., builtin: _Optional[bool] = ...) -> None: ...

class StateInfo(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class TriggerInfo(_message.Message):
    __slots__ = ("name", "stinger", "set_state", "bump")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STINGER_FIELD_NUMBER: _ClassVar[int]
    SET_STATE_FIELD_NUMBER: _ClassVar[int]
    BUMP_FIELD_NUMBER: _ClassVar[int]
    name: str
    stinger: str
    set_state: str
    bump: float
    def __init__(self, name: _Optional[str] = ..., stinger: _Optional[str] = ..., set_state: _Optional[str] = ..., bump: _Optional[float] = ...) -> None: ...

class PromptInfo(_message.Message):
    __slots__ = ("name", "text", "audio", "weight")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    text: str
    audio: str
    weight: float
    def __init__(self, name: _Optional[str] = ..., text: _Optional[str] = ..., audio: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class GraphDescription(_message.Message):
    __slots__ = ("name", "parameters", "states", "state", "driven_by", "triggers", "prompts", "stingers", "controls")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DRIVEN_BY_FIELD_NUMBER: _ClassVar[int]
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    STINGERS_FIELD_NUMBER: _ClassVar[int]
    CONTROLS_FIELD_NUMBER: _ClassVar[int]
    name: str
    parameters: _containers.RepeatedCompositeFieldContainer[ParameterInfo]
    states: _containers.RepeatedCompositeFieldContainer[StateInfo]
    state: str
    driven_by: str
    triggers: _containers.RepeatedCompositeFieldContainer[TriggerInfo]
    prompts: _containers.RepeatedCompositeFieldContainer[PromptInfo]
    stingers: _containers.RepeatedScalarFieldContainer[str]
    controls: Controls
    def __init__(self, name: _Optional[str] = ..., parameters: _Optional[_Iterable[_Union[ParameterInfo, _Mapping]]] = ..., states: _Optional[_Iterable[_Union[StateInfo, _Mapping]]] = ..., state: _Optional[str] = ..., driven_by: _Optional[str] = ..., triggers: _Optional[_Iterable[_Union[TriggerInfo, _Mapping]]] = ..., prompts: _Optional[_Iterable[_Union[PromptInfo, _Mapping]]] = ..., stingers: _Optional[_Iterable[str]] = ..., controls: _Optional[_Union[Controls, _Mapping]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "field", "supported_versions")
    class Code(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CODE_UNSPECIFIED: _ClassVar[Error.Code]
        BAD_MESSAGE: _ClassVar[Error.Code]
        UNSUPPORTED_VERSION: _ClassVar[Error.Code]
        UNKNOWN_NAME: _ClassVar[Error.Code]
        BAD_VALUE: _ClassVar[Error.Code]
        GRAPH_INVALID: _ClassVar[Error.Code]
        TOO_LARGE: _ClassVar[Error.Code]
        RATE_LIMITED: _ClassVar[Error.Code]
        INTERNAL: _ClassVar[Error.Code]
        NOT_READY: _ClassVar[Error.Code]
        PERMISSION_DENIED: _ClassVar[Error.Code]
        TIMEOUT: _ClassVar[Error.Code]
    CODE_UNSPECIFIED: Error.Code
    BAD_MESSAGE: Error.Code
    UNSUPPORTED_VERSION: Error.Code
    UNKNOWN_NAME: Error.Code
    BAD_VALUE: Error.Code
    GRAPH_INVALID: Error.Code
    TOO_LARGE: Error.Code
    RATE_LIMITED: Error.Code
    INTERNAL: Error.Code
    NOT_READY: Error.Code
    PERMISSION_DENIED: Error.Code
    TIMEOUT: Error.Code
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    SUPPORTED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    code: Error.Code
    message: str
    field: str
    supported_versions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, code: _Optional[_Union[Error.Code, str]] = ..., message: _Optional[str] = ..., field: _Optional[str] = ..., supported_versions: _Optional[_Iterable[int]] = ...) -> None: ...

class Beat(_message.Message):
    __slots__ = ("beat", "bar", "beat_in_bar", "bpm", "estimated")
    BEAT_FIELD_NUMBER: _ClassVar[int]
    BAR_FIELD_NUMBER: _ClassVar[int]
    BEAT_IN_BAR_FIELD_NUMBER: _ClassVar[int]
    BPM_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    beat: int
    bar: int
    beat_in_bar: int
    bpm: float
    estimated: bool
    def __init__(self, beat: _Optional[int] = ..., bar: _Optional[int] = ..., beat_in_bar: _Optional[int] = ..., bpm: _Optional[float] = ..., estimated: _Optional[bool] = ...) -> None: ...

class StateChange(_message.Message):
    __slots__ = ("name", "previous", "phase", "transition", "fade_seconds")
    class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PHASE_UNSPECIFIED: _ClassVar[StateChange.Phase]
        SCHEDULED: _ClassVar[StateChange.Phase]
        STARTED: _ClassVar[StateChange.Phase]
        COMPLETED: _ClassVar[StateChange.Phase]
        CANCELLED: _ClassVar[StateChange.Phase]
    PHASE_UNSPECIFIED: StateChange.Phase
    SCHEDULED: StateChange.Phase
    STARTED: StateChange.Phase
    COMPLETED: StateChange.Phase
    CANCELLED: StateChange.Phase
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    TRANSITION_FIELD_NUMBER: _ClassVar[int]
    FADE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    previous: str
    phase: StateChange.Phase
    transition: str
    fade_seconds: float
    def __init__(self, name: _Optional[str] = ..., previous: _Optional[str] = ..., phase: _Optional[_Union[StateChange.Phase, str]] = ..., transition: _Optional[str] = ..., fade_seconds: _Optional[float] = ...) -> None: ...

class Mix(_message.Message):
    __slots__ = ("weights",)
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    weights: _containers.ScalarMap[str, float]
    def __init__(self, weights: _Optional[_Mapping[str, float]] = ...) -> None: ...

class StingerFired(_message.Message):
    __slots__ = ("name", "duration_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    duration_seconds: float
    def __init__(self, name: _Optional[str] = ..., duration_seconds: _Optional[float] = ...) -> None: ...

class Xrun(_message.Message):
    __slots__ = ("count", "frames_lost", "source")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FRAMES_LOST_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    count: int
    frames_lost: int
    source: str
    def __init__(self, count: _Optional[int] = ..., frames_lost: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...

class Warning(_message.Message):
    __slots__ = ("message", "field")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    message: str
    field: str
    def __init__(self, message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("topic", "sequence", "stream_time", "stream_seconds", "heard_at", "beat", "bar", "state", "mix", "stinger", "xrun", "warning", "status")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STREAM_TIME_FIELD_NUMBER: _ClassVar[int]
    STREAM_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HEARD_AT_FIELD_NUMBER: _ClassVar[int]
    BEAT_FIELD_NUMBER: _ClassVar[int]
    BAR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MIX_FIELD_NUMBER: _ClassVar[int]
    STINGER_FIELD_NUMBER: _ClassVar[int]
    XRUN_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    topic: str
    sequence: int
    stream_time: int
    stream_seconds: float
    heard_at: float
    beat: Beat
    bar: Beat
    state: StateChange
    mix: Mix
    stinger: StingerFired
    xrun: Xrun
    warning: Warning
    status: Status
    def __init__(self, topic: _Optional[str] = ..., sequence: _Optional[int] = ..., stream_time: _Optional[int] = ..., stream_seconds: _Optional[float] = ..., heard_at: _Optional[float] = ..., beat: _Optional[_Union[Beat, _Mapping]] = ..., bar: _Optional[_Union[Beat, _Mapping]] = ..., state: _Optional[_Union[StateChange, _Mapping]] = ..., mix: _Optional[_Union[Mix, _Mapping]] = ..., stinger: _Optional[_Union[StingerFired, _Mapping]] = ..., xrun: _Optional[_Union[Xrun, _Mapping]] = ..., warning: _Optional[_Union[Warning, _Mapping]] = ..., status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("sequence", "stream_time", "sample_rate", "channels", "frames", "format", "pcm")
    class SampleFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SAMPLE_FORMAT_UNSPECIFIED: _ClassVar[AudioChunk.SampleFormat]
        FLOAT32_LE: _ClassVar[AudioChunk.SampleFormat]
        INT16_LE: _ClassVar[AudioChunk.SampleFormat]
    SAMPLE_FORMAT_UNSPECIFIED: AudioChunk.SampleFormat
    FLOAT32_LE: AudioChunk.SampleFormat
    INT16_LE: AudioChunk.SampleFormat
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STREAM_TIME_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    PCM_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    stream_time: int
    sample_rate: int
    channels: int
    frames: int
    format: AudioChunk.SampleFormat
    pcm: bytes
    def __init__(self, sequence: _Optional[int] = ..., stream_time: _Optional[int] = ..., sample_rate: _Optional[int] = ..., channels: _Optional[int] = ..., frames: _Optional[int] = ..., format: _Optional[_Union[AudioChunk.SampleFormat, str]] = ..., pcm: _Optional[bytes] = ...) -> None: ...
