"""Server-rendered pages: first-run setup, login, password reset, email verification."""
