Feature: LoadBalancer IP address management
  Cilium's LB IPAM gives LoadBalancer services an address from a pool, and the BGP control plane
  announces it from every peering node. Overlapping pools and impossible requests are reported on
  the objects themselves.

  Background:
    Given BGP peering between the labelled nodes and the router is established

  Scenario: A LoadBalancer service gets an address from the pool, announced by every peering node
    Given the first LB IP pool exists
    And the nginx pod runs
    When a LoadBalancer service is created for it
    Then the service gets an external IP inside the first pool
    And the service reports that its IP request is satisfied
    And the router learns that address as a /32 from every labelled node

  Scenario: An overlapping pool is marked conflicting and allocates nothing
    Given the first LB IP pool exists
    When a second pool overlapping the first pool is created
    Then the second pool is marked conflicting because its CIDR overlaps the first pool's
    And the first pool is not marked conflicting
    And a new LoadBalancer service still gets an address from the first pool
    When a LoadBalancer service requests an address only the second pool holds
    Then the service gets no external IP
    And the service reports that no pool can satisfy its request
    When the second pool is changed to a CIDR that overlaps no pool
    Then the second pool is no longer marked conflicting

  Scenario: A service asking for an address no pool has is told why
    Given the first LB IP pool exists
    When a LoadBalancer service requests an address outside every pool
    Then the service gets no external IP
    And the service reports that no pool can satisfy its request

  Rule: Which addresses of a CIDR a pool hands out depends on the Cilium version
    Cilium 1.13 to 1.15 never hand out a CIDR's network and broadcast addresses; from 1.16 a pool's
    allowFirstLastIPs defaults to Yes and they are handed out like any other.

    @cilium_before_1_16
    Scenario: Before Cilium 1.16 a pool never hands out a CIDR's first or last address
      Given the first LB IP pool exists
      When a pool of one /30 is created and a LoadBalancer service asks for each of its four addresses
      Then only the services asking for the two middle addresses get them

    @cilium_from_1_16
    Scenario: From Cilium 1.16 a pool hands out a CIDR's first and last addresses too
      Given the first LB IP pool exists
      When a pool of one /30 is created and a LoadBalancer service asks for each of its four addresses
      Then every service gets the address it asked for, the first and last included
