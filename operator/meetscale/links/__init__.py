"""Join links for admitted Meetings: a Jitsi token per Meeting, in a Secret of its namespace.

``tokens`` mints (pure: claims, header, digest, the signed token and the link); ``secrets``
keeps each Meeting's Secret in line with its phase, room and window (the shell: reads the
app secret, creates, replaces and deletes Secrets, writes `status.joinSecret`, posts events);
``loop`` runs it, one loop per BridgePool, woken by Meeting events.
"""
