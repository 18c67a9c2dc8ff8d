"""shoplogs-agent: the log shipper for the shop's EC2 hosts (a Python Kinesis Agent).

Its own package with boto3 as its only dependency, so a web host installs this wheel and
nothing of the rest of the project.
"""
