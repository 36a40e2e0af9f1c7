"""Local stand-ins for stores whose server cannot be installed here, close enough to their documented APIs that
the official clients talk to them unchanged."""
