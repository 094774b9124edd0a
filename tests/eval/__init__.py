"""``krabby-eval``: episodes through the whole appliance."""
