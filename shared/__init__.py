"""The core every other Seamline package builds on. Imports nothing else of ours."""
