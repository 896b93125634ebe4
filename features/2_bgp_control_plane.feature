Feature: Enabling Cilium's BGP control plane
  The agents read the BGP setting when they start; the operator registers the BGP resources (the
  peering policy on the v1 API, the cluster config, peer config, advertisement and node config on
  BGPv2) only when it starts. Enabling BGP with cilium-cli up to v0.18.6 restarts the agents but not
  the operator, so the agents wait for resources nobody has registered yet, until the operator
  restarts; from cilium-cli v0.18.7 the same command restarts the operator too. Which resources, and
  what the agents log while they wait, follow the Cilium version and its BGP API.

  @destructive
  Rule: Enabling BGP in a running Cilium

    Background:
      Given Cilium is installed with the BGP control plane disabled

    @cilium_cli_before_0_18_7
    Scenario: Agents wait for the BGP resources until the operator restarts
      When the BGP control plane is enabled in the Cilium configuration
      Then every Cilium agent is restarted and the operator is not
      And the BGP configuration resources are not served
      And the Cilium agents are not ready and log that the BGP resources are missing
      When the Cilium operator is restarted
      Then the operator logs that it created the BGP configuration resources
      And the BGP configuration resources are served
      And every Cilium agent is ready

    @cilium_cli_from_0_18_7
    Scenario: The configuration change restarts the operator too, so the BGP resources come at once
      When the BGP control plane is enabled in the Cilium configuration
      Then every Cilium agent and the operator are restarted
      And the operator logs that it created the BGP configuration resources
      And the BGP configuration resources are served
      And every Cilium agent is ready

  Rule: A Cilium with its BGP control plane on

    Background:
      Given a cluster whose BGP control plane is enabled and ready

    Scenario: The configuration enables BGP and the BGP resources are served
      Then the Cilium configuration enables the BGP control plane
      And the BGP configuration resources are served
      And every Cilium agent is ready
