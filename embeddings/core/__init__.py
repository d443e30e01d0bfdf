"""The shared core every stage stands on: errors, atomic files and JSON, manifests, the folder
lock, the run directory, JSON schemas, progress bars and lazy exports."""
