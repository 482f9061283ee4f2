"""The bank's records: banks, members, accounts and the transfers of hours between them.

Everything that must survive a restart lives here, in SQL. Services in this package take a
SQLAlchemy ``Session`` and never do network I/O of their own.
"""
