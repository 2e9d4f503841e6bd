"""The integration layer: providers (see base.py), connections, links and pushes."""
