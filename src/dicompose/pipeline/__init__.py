"""Running tools and pipelines: plan tasks, hand them to an engine, publish outputs atomically."""
