"""The only code that speaks SMTP: the transport, the development sink, its mailbox."""
