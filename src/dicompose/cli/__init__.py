"""Command-line adapters: parse, call one service function, print. No domain logic here."""
