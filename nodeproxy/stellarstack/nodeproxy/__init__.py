"""The node agent for bare Docker hosts: containers, console, files, archives, backups, SFTP."""
