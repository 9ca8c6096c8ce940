"""stagelab: build, measure and compare Docker images for the multi-stage builds lab."""
__version__ = "0.1.0"
