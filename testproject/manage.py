#!/usr/bin/env python
"""The demo site's manage.py: ``python testproject/manage.py migrate`` and friends."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
