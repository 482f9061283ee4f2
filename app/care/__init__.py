"""Care: a bank that notices people, keeps them safe, and includes those who cannot text.

One module a part, each with its services (used alike by texts, the dashboard and the
command line):

- ``inbox``: every inbound text kept; texts the bank did not understand, wishes to talk to a
  person (``TALK``) and distress reach the brokers on duty; brokers reply from the dashboard.
- ``away``: ``LEAVE`` confirmed, ``AWAY``/``BACK`` (timed resumes), members gone quiet,
  the brokers' daily summary, the optional check-in.
- ``offline``: members without a phone, registered and acted for by a broker; shared phones.
- ``introductions``: numbers exchanged only after a broker approves, where the bank chooses.
"""
