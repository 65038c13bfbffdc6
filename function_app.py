"""The Azure Functions app (Python v2 programming model): registers one blueprint per
``functions/<name>/``. The same file runs under the Functions host in Azure and under
the project's local host (``abonno host``)."""

import azure.functions as func

from functions.access_http import bp as access_http
from functions.access_worker import bp as access_worker
from functions.charges_worker import bp as charges_worker
from functions.customer_service_http import bp as customer_service_http
from functions.dunning_timer import bp as dunning_timer
from functions.identity_http import bp as identity_http
from functions.invoice_timer import bp as invoice_timer
from functions.merchant_http import bp as merchant_http
from functions.my_http import bp as my_http
from functions.notification_worker import bp as notification_worker
from functions.numbering_http import bp as numbering_http
from functions.ocr_blob_trigger import bp as ocr_blob_trigger
from functions.openapi_http import bp as openapi_http
from functions.pages_http import bp as pages_http
from functions.pending_orders_http import bp as pending_orders_http
from functions.print_timer import bp as print_timer
from functions.provider_timer import bp as provider_timer
from functions.provider_worker import bp as provider_worker
from functions.run_worker import bp as run_worker
from functions.salesposter_http import bp as salesposter_http
from functions.swedbankpay_callback import bp as swedbankpay_callback
from functions.vipps_webhook import bp as vipps_webhook

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint in (salesposter_http, merchant_http, invoice_timer, run_worker, ocr_blob_trigger, openapi_http,
                  customer_service_http, dunning_timer, notification_worker, pending_orders_http,
                  numbering_http, print_timer, vipps_webhook, swedbankpay_callback, provider_worker, charges_worker,
                  provider_timer, identity_http, my_http, access_http, access_worker, pages_http):
    app.register_functions(blueprint)
