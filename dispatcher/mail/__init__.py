"""Templates, rendering and MIME building of the e-mails; previews."""
