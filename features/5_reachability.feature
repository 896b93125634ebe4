Feature: Reaching nginx from outside the cluster through the LB IP
  The outside client has no route into the cluster except the router's BGP routes; the LB IP and
  port must lead it to nginx through whichever node the router picks.

  Background:
    Given the nginx service has an external IP announced to the router

  Scenario: The outside client gets the nginx page through the LB IP
    When the outside client requests the service's external IP and port
    Then it gets the nginx welcome page

  Scenario: Requests from many source ports spread over the peering nodes
    When the outside client sends 24 requests from different source ports
    Then every request gets the nginx welcome page
    And the requests entered through more than one labelled node when the router does ECMP
