"""The GitHub side of pyfn: the Action's adapter, and the REST calls it makes.

``workflow`` speaks the runner's language (workflow commands, outputs, the job
summary); ``event`` reads the event that started the job; ``comments`` keeps one
sticky pull-request comment per function; ``inputs`` maps the Action's inputs to
pyfn's settings; ``base`` builds a function at the pull request's base commit;
``action`` runs the whole step, calling the same flows as the ``pyfn`` command.
"""
