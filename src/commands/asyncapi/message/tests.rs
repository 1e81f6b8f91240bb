use super::*;

#[test]
fn camel_case_names() {
    assert_eq!(
        camel("TAXINVOICE.STATE:CLOSEDOWN"),
        "TaxinvoiceStateClosedown"
    );
    assert_eq!(camel("HT.CASHBILL:HTCashbill"), "HtCashbillHtcashbill");
}
