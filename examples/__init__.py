"""Handlers for the IDL files under idl/, served by the README's commands and by the tests."""
