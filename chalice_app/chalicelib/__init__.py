"""What only the API needs: request parsing, the error shape, the upload
service. Modules here may do I/O only through clients they are given."""
