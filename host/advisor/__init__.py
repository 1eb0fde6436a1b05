"""The advisor: scheduled passes that read the transcripts, condense them per NPC with a light model, ask a bigger
model for recommendations and feed them back to the NPCs' next turns (docs/advisor.md).

It never imports the brain: both use the model layer in `host.llm` and the store's steering records.
"""
