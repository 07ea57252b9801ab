import Testing

@Suite struct CrewPlaceholder {}
