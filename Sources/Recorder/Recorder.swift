/// Recording a trace of IPIs and CPU modes through tracefs (`cpuflags record`).
public enum Recorder {}
