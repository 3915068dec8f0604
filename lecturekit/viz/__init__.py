"""Visual toolkit: storyboards, timelines, curves, confusion matrices, attention maps, widgets."""
