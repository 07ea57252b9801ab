import Testing

@Suite struct WorkflowPlaceholder {}
