"""``python -m lifecycle doctor``: what each job needs, checked against the tenant and storage without writing.

Checks are data (lifecycle.doctor.checks); lifecycle.doctor.diagnose decides them from what the probe port
(lifecycle.doctor.ports) reads; app.doctor_probe reads Graph and Azure Storage for it.
"""
