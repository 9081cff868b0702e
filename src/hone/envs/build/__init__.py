"""hone.envs.build: environments built from specs (the FTRL pipeline); see docs/tool-environments.md."""
