Feature: Enabling Cilium's BGP control plane
  The agents read the BGP setting when they start; the operator registers the peering policy
  resource only when it starts. Enabling BGP restarts the agents but not the operator, so the agents
  wait for a resource nobody has registered yet, until the operator restarts.

  @destructive
  Rule: Enabling BGP in a running Cilium

    Background:
      Given Cilium is installed with the BGP control plane disabled

    Scenario: Agents wait for the peering policy resource until the operator restarts
      When the BGP control plane is enabled in the Cilium configuration
      Then every Cilium agent is restarted and the operator is not
      And the BGP peering policy resource is not served
      And the Cilium agents are not ready and log that they cannot watch BGP peering policies
      When the Cilium operator is restarted
      Then the operator logs that it created the BGP peering policy resource
      And the BGP peering policy resource is served
      And every Cilium agent is ready

  Rule: A Cilium with its BGP control plane on

    Background:
      Given a cluster whose BGP control plane is enabled and ready

    Scenario: The configuration enables BGP and the peering policy resource is served
      Then the Cilium configuration enables the BGP control plane
      And the BGP peering policy resource is served
      And every Cilium agent is ready
