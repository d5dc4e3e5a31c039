"""Handlers for the IDL files under idl/, served by the commands in the README and docs/, and by the tests."""
