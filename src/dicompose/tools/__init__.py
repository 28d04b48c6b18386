"""Built-in tools and their batch runners."""
