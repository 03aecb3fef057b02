# An App Runner connection and an auto scaling configuration, applied against Runyard by
# tests/e2e/test_terraform.py (the endpoint comes from AWS_ENDPOINT_URL_APPRUNNER).

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

variable "suffix" {
  type        = string
  description = "Keeps names unique per run."
}

resource "aws_apprunner_connection" "github" {
  connection_name = "tf-conn-${var.suffix}"
  provider_type   = "GITHUB"

  tags = {
    Project = "runyard"
    Purpose = "terraform-e2e"
  }
}

resource "aws_apprunner_auto_scaling_configuration_version" "small" {
  auto_scaling_configuration_name = "tf-asc-${var.suffix}"
  max_concurrency                 = 50
  min_size                        = 2
  max_size                        = 10

  tags = {
    Project = "runyard"
    Tier    = "small"
  }
}

output "connection_arn" {
  value = aws_apprunner_connection.github.arn
}

output "connection_name" {
  value = aws_apprunner_connection.github.connection_name
}

output "auto_scaling_configuration_arn" {
  value = aws_apprunner_auto_scaling_configuration_version.small.arn
}
