"""Pure product logic, no I/O: events, e-mail kinds, addresses, locales, rules, texts."""
