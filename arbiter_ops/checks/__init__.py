"""The go-live checklist (`smoke-test`, and deploy's last step): :mod:`.checklist` lists the checks in the
contract's order and runs them; :mod:`.infra`, :mod:`.app` and :mod:`.http` hold one function per check id;
:mod:`.base` what they share.
"""
