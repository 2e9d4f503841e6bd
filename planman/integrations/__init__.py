"""The integration layer: providers (Xero first), connections, links and pushes."""
