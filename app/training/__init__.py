"""Training encoders: losses (AM-Softmax, CoSENT), the fine-tuning loop, and the pieces every
training loop here shares (schedule, seeded batches, resumable optimizer state). Imports torch."""
